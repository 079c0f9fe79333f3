package embedetcd_test

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/uspace-io/uspace/store"
	"github.com/uspace-io/uspace/store/embedetcd"
)

func start(t *testing.T, dir string) *embedetcd.Etcd {
	t.Helper()
	e, err := embedetcd.Start(context.Background(), embedetcd.Config{Dir: dir, ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEmbedded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	ctx := context.Background()

	e := start(t, dir)
	u, err := url.Parse(e.Endpoints()[0])
	if err != nil || len(e.Endpoints()) != 1 || u.Port() == "0" || u.Port() == "" {
		t.Fatalf("endpoints %v: want one with the real port", e.Endpoints())
	}
	c, err := store.Connect(ctx, store.Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := c.Apply(ctx, store.Op{Key: "/uspace/v1/networks/n1", Value: []byte(`{"mtu":1500}`), Guard: store.CreateOnly()})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	e.Close()

	e = start(t, dir)
	defer e.Close()
	c, err = store.Connect(ctx, store.Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kv, err := c.Get(ctx, "/uspace/v1/networks/n1")
	if err != nil || kv == nil || string(kv.Value) != `{"mtu":1500}` || kv.ModRevision != rev {
		t.Fatalf("after restart: %+v, %v; want the value written at %d", kv, err, rev)
	}

	if _, err := embedetcd.Start(ctx, embedetcd.Config{}); err == nil || err.Error() != "embedded etcd: no data directory given" {
		t.Fatalf("no dir: %v", err)
	}
}
