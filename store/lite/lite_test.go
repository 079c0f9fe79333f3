package lite

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/store/embedetcd"
	"github.com/uspace-io/uspace/store/etcdconf"
)

func startEtcd(t *testing.T) (*embedetcd.Etcd, *clientv3.Client) {
	t.Helper()
	e, err := embedetcd.Start(context.Background(), embedetcd.Config{Dir: t.TempDir(), ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return e, cli
}

func TestSmoke(t *testing.T) {
	e, cli := startEtcd(t)
	ctx := context.Background()
	c, err := Connect(ctx, etcdconf.Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Txn(ctx, []Cmp{ModRevisionIs("/a", 0)}, []Op{Put("/a", []byte("1")), Get("/b")}, []Op{Get("/a")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	r, err = c.Txn(ctx, []Cmp{ModRevisionIs("/a", 0)}, []Op{Put("/a", []byte("1"))}, []Op{Get("/a"), GetPrefix("/")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	kv, rev, err := c.Get(ctx, "/a")
	t.Logf("%+v %d %v", kv, rev, err)
	go func() {
		time.Sleep(200 * time.Millisecond)
		cli.Put(ctx, "/a", "2")
		cli.Put(ctx, "/a", "3")
	}()
	got, err := c.WaitFor(ctx, "/a", State{KV: kv, Revision: rev}, func(kv *KV) (bool, error) {
		t.Logf("saw %+v", kv)
		return kv != nil && string(kv.Value) == "3", nil
	})
	t.Logf("%+v %v", got, err)
}
