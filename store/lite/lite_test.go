package lite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/tests/v3/framework/integration"

	"github.com/uspace-io/uspace/store/embedetcd"
	"github.com/uspace-io/uspace/store/etcdconf"
)

// etcd is a real etcd run in the test process.
type etcd struct {
	*embedetcd.Etcd
	// Stop stops it (at the latest when the test ends).
	Stop func()
}

// startEtcd runs etcd on clientURL (port 0: a free one) and returns it with
// a client/v3 client for setting up.
func startEtcd(t *testing.T, dir, clientURL string) (etcd, *clientv3.Client) {
	t.Helper()
	e, err := embedetcd.Start(context.Background(), embedetcd.Config{Dir: dir, ClientURL: clientURL, PeerURL: "http://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	stop := sync.OnceFunc(e.Close)
	t.Cleanup(stop)
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return etcd{e, stop}, cli
}

func connect(t *testing.T, cfg etcdconf.Config) *Client {
	t.Helper()
	c, err := Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func put(t *testing.T, cli *clientv3.Client, key, val string) int64 {
	t.Helper()
	resp, err := cli.Put(context.Background(), key, val)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func keysOf(kvs []KV) string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key+"="+string(kv.Value))
	}
	return strings.Join(out, " ")
}

// Comparisons decide the branch; each operation of the branch that ran
// has its result, reads at the transaction's revision.
func TestTxn(t *testing.T) {
	e, cli := startEtcd(t, t.TempDir(), "http://127.0.0.1:0")
	c := connect(t, etcdconf.Config{Endpoints: e.Endpoints()})
	ctx := context.Background()

	r, err := c.Txn(ctx, []Cmp{ModRevisionIs("/a/1", 0)}, []Op{Put("/a/1", []byte("x")), Get("/a/1")}, []Op{Get("/a/1")})
	if err != nil || !r.Succeeded || len(r.Results) != 2 || keysOf(r.Results[1].KVs) != "/a/1=x" {
		t.Fatalf("create: %+v %v", r, err)
	}
	created := r.Revision
	r, err = c.Txn(ctx, []Cmp{ModRevisionIs("/a/1", 0)}, []Op{Put("/a/1", []byte("y"))}, []Op{Get("/a/1"), GetPrefix("/a/")})
	if err != nil || r.Succeeded || r.Revision != created || len(r.Results) != 2 {
		t.Fatalf("create again: %+v %v", r, err)
	}
	if kv := r.Results[0].KVs[0]; kv.ModRevision != created || kv.CreateRevision != created || string(kv.Value) != "x" {
		t.Fatalf("read in Else: %+v", kv)
	}
	if r, err := c.Txn(ctx, []Cmp{ModRevisionIs("/a/1", created)}, []Op{Put("/a/1", []byte("y"))}, nil); err != nil || !r.Succeeded {
		t.Fatalf("compare and swap: %+v %v", r, err)
	}

	put(t, cli, "/a/3", "z")
	for _, tc := range []struct {
		name string
		cmp  Cmp
		want bool
	}{
		{"no key in a range holding one", NoKeyIn("/a/", "/a/2"), false},
		{"no key in a range around it", NoKeyIn("/a/1\x00", "/a/3"), true},
		{"no key in an empty prefix", NoKeyIn("/b/", PrefixEnd("/b/")), true},
	} {
		r, err := c.Txn(ctx, []Cmp{tc.cmp}, []Op{Get("/a/1")}, []Op{Get("/a/1")})
		if err != nil || r.Succeeded != tc.want {
			t.Errorf("%s: %+v %v", tc.name, r, err)
		}
	}

	_, rev, err := c.Get(ctx, "/a/1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, "/a/3"); err != nil {
		t.Fatal(err)
	}
	// Deletes leave a prefix unchanged; a put does not.
	if r, err := c.Txn(ctx, []Cmp{UnchangedSince("/a/", rev)}, []Op{Get("/a/1")}, nil); err != nil || !r.Succeeded {
		t.Fatalf("after a delete: %+v %v", r, err)
	}
	put(t, cli, "/a/4", "w")
	if r, err := c.Txn(ctx, []Cmp{UnchangedSince("/a/", rev)}, []Op{Get("/a/1")}, []Op{Get("/a/4")}); err != nil || r.Succeeded {
		t.Fatalf("after a put: %+v %v", r, err)
	}

	r, err = c.Txn(ctx, nil, []Op{Delete("/a/1"), Delete("/a/nothing"), Get("/a/1")}, nil)
	if err != nil || r.Results[0].Deleted != 1 || r.Results[1].Deleted != 0 || len(r.Results[2].KVs) != 0 {
		t.Fatalf("deletes: %+v %v", r, err)
	}
	if kv, _, err := c.Get(ctx, "/a/1"); err != nil || kv != nil {
		t.Fatalf("deleted key read back: %+v %v", kv, err)
	}
	if _, err := c.Txn(ctx, nil, nil, nil); err == nil {
		t.Fatal("a transaction without operations was sent")
	}
	if got := PrefixEnd("a\xff\xff"); got != "b" {
		t.Errorf("PrefixEnd: %q", got)
	}
}

// List reads a prefix larger than a page as one snapshot, sorted.
func TestListPages(t *testing.T) {
	e, cli := startEtcd(t, t.TempDir(), "http://127.0.0.1:0")
	c := connect(t, etcdconf.Config{Endpoints: e.Endpoints()})
	ctx := context.Background()
	const n = 2*listPage + 17
	for i := 0; i < n; i += 100 {
		var ops []clientv3.Op
		for j := i; j < min(i+100, n); j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("/p/%05d", j), "v"))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	last := put(t, cli, "/q", "outside")
	kvs, rev, err := c.List(ctx, "/p/")
	if err != nil || len(kvs) != n || rev != last {
		t.Fatalf("%d keys at revision %d (want %d at %d): %v", len(kvs), rev, n, last, err)
	}
	for i, kv := range kvs {
		if kv.Key != fmt.Sprintf("/p/%05d", i) {
			t.Fatalf("key %d is %s", i, kv.Key)
		}
	}
}

func valueIs(v string) func(kv *KV) (bool, error) {
	return func(kv *KV) (bool, error) { return kv != nil && string(kv.Value) == v, nil }
}

// WaitFor starts from what the caller read, or reads itself; it survives
// the history it starts from being compacted away; it reports ctx's end
// and cond's failure with the last state seen.
func TestWaitFor(t *testing.T) {
	e, cli := startEtcd(t, t.TempDir(), "http://127.0.0.1:0")
	c := connect(t, etcdconf.Config{Endpoints: e.Endpoints()})
	ctx := context.Background()

	rev := put(t, cli, "/k", "1")
	go func() {
		time.Sleep(100 * time.Millisecond)
		put(t, cli, "/other", "x")
		put(t, cli, "/k", "2")
		put(t, cli, "/k", "3")
	}()
	var seen []string
	kv, err := c.WaitFor(ctx, "/k", State{KV: &KV{Key: "/k", Value: []byte("1")}, Revision: rev}, func(kv *KV) (bool, error) {
		seen = append(seen, string(kv.Value))
		return string(kv.Value) == "3", nil
	})
	if err != nil || string(kv.Value) != "3" || strings.Join(seen, ",") != "1,2,3" {
		t.Fatalf("from a known state: %+v %v, saw %v", kv, err, seen)
	}

	// The zero State: read first; a deletion is nil.
	if kv, err := c.WaitFor(ctx, "/k", State{}, valueIs("3")); err != nil || string(kv.Value) != "3" {
		t.Fatalf("from nothing: %+v %v", kv, err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = cli.Delete(ctx, "/k")
	}()
	if kv, err := c.WaitFor(ctx, "/k", State{}, func(kv *KV) (bool, error) { return kv == nil, nil }); err != nil || kv != nil {
		t.Fatalf("deletion: %+v %v", kv, err)
	}

	// History from rev compacted: WaitFor reads the key again.
	put(t, cli, "/k", "4")
	now := put(t, cli, "/k", "5")
	if _, err := cli.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	if kv, err := c.WaitFor(ctx, "/k", State{Revision: rev}, valueIs("5")); err != nil || string(kv.Value) != "5" {
		t.Fatalf("after compaction: %+v %v", kv, err)
	}

	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	kv, err = c.WaitFor(tctx, "/k", State{}, valueIs("never"))
	if !errors.Is(err, context.DeadlineExceeded) || !IsUnavailable(err) || kv == nil || string(kv.Value) != "5" {
		t.Fatalf("deadline: %+v %v", kv, err)
	}
	boom := errors.New("boom")
	kv, err = c.WaitFor(ctx, "/k", State{}, func(*KV) (bool, error) { return false, boom })
	if !errors.Is(err, boom) || kv == nil {
		t.Fatalf("cond failing: %+v %v", kv, err)
	}
}

// A watch broken by etcd restarting resumes after the last change seen:
// the change made while etcd was away is not missed.
func TestWaitForRidesOutRestart(t *testing.T) {
	dir := t.TempDir()
	e, cli := startEtcd(t, dir, "http://127.0.0.1:0")
	url := e.Endpoints()[0]
	c := connect(t, etcdconf.Config{Endpoints: e.Endpoints(), DialTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rev := put(t, cli, "/k", "before")
	done := make(chan error, 1)
	go func() {
		_, err := c.WaitFor(ctx, "/k", State{KV: &KV{Value: []byte("before")}, Revision: rev}, valueIs("after"))
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	e.Stop()
	select {
	case err := <-done:
		t.Fatalf("WaitFor ended with etcd down: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	_, cli = startEtcd(t, dir, url)
	put(t, cli, "/k", "after")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Before etcd stops at the end of the test, which would otherwise
	// wait for the client's idle connection.
	c.Close()
}

// Nothing listening: the first request fails within the dial timeout,
// says etcd is unreachable, and counts as unavailable and not sent; a
// second endpoint that answers is used instead.
func TestUnreachable(t *testing.T) {
	const dead = "127.0.0.1:1"
	c := connect(t, etcdconf.Config{Endpoints: []string{dead}, DialTimeout: 500 * time.Millisecond})
	start := time.Now()
	_, err := c.Txn(context.Background(), nil, []Op{Put("/k", []byte("v"))}, nil)
	if err == nil || !IsUnavailable(err) || !NotSent(err) || IsDenied(err) ||
		!strings.Contains(err.Error(), "etcd at "+dead+" unreachable within 500ms") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error %v (unavailable %v, not sent %v)", err, IsUnavailable(err), NotSent(err))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v", took)
	}

	e, _ := startEtcd(t, t.TempDir(), "http://127.0.0.1:0")
	c = connect(t, etcdconf.Config{Endpoints: []string{dead, e.Endpoints()[0]}})
	for range 4 {
		if _, err := c.Txn(context.Background(), nil, []Op{Put("/k", []byte("v"))}, nil); err != nil {
			t.Fatalf("with one endpoint alive: %v", err)
		}
	}
	// A watch too starts on the first endpoint that answers.
	c.next.Store(0)
	if kv, err := c.WaitFor(context.Background(), "/k", State{}, valueIs("v")); err != nil || kv == nil {
		t.Fatalf("watch with one endpoint alive: %+v %v", kv, err)
	}
	if _, err := Connect(context.Background(), etcdconf.Config{Endpoints: []string{"dns://etcd.example"}}); err == nil {
		t.Error("an endpoint of another scheme was accepted")
	}
}

// With auth off, credentials are ignored. With auth on: a wrong password
// fails Connect naming the user and not the password; a key outside the
// user's permission is refused (IsDenied), to a transaction and to a watch
// alike; a token made stale by a change of etcd's auth store is renewed
// without the caller seeing it; a deleted user is refused.
func TestPasswordAuth(t *testing.T) {
	e, cli := startEtcd(t, t.TempDir(), "http://127.0.0.1:0")
	ctx := context.Background()
	// Credentials for an etcd without auth are no error (as with etcd's
	// own client).
	noAuth := connect(t, etcdconf.Config{Endpoints: e.Endpoints(), Username: "u", Password: "right-horse"})
	if _, err := noAuth.Txn(ctx, nil, []Op{Put("/mine/k", []byte("v"))}, nil); err != nil {
		t.Fatalf("with credentials, auth off: %v", err)
	}
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "mine"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "mine", "/mine/", "/mine0", clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "u", "right-horse"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "u", "mine"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := etcdconf.Config{Endpoints: e.Endpoints(), Username: "u", Password: "wrong-staple"}
	_, err := Connect(ctx, cfg)
	if err == nil || !IsDenied(err) || strings.Contains(err.Error(), "wrong-staple") || !strings.Contains(err.Error(), `as "u"`) {
		t.Fatalf("wrong password: %v", err)
	}
	cfg.Password = "right-horse"
	c := connect(t, cfg)
	if _, err := c.Txn(ctx, nil, []Op{Put("/mine/k", []byte("v"))}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.Txn(ctx, nil, []Op{Put("/theirs/k", []byte("v"))}, nil)
	if !IsDenied(err) || IsUnavailable(err) {
		t.Fatalf("write outside the user's keys: %v", err)
	}
	if _, err := c.WaitFor(ctx, "/theirs/k", State{Revision: 1}, valueIs("x")); !IsDenied(err) {
		t.Fatalf("watch outside the user's keys: %v", err)
	}

	root, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), Username: "root", Password: "root-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.RoleGrantPermission(ctx, "mine", "/also/", "/also0", clientv3.PermissionType(clientv3.PermRead)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, "/also/k"); err != nil {
		t.Fatalf("after the auth store changed: %v", err)
	}
	if _, err := root.UserDelete(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, "/mine/k"); !IsDenied(err) {
		t.Fatalf("after the user was deleted: %v", err)
	}
}

// An etcd on a unix socket, as etcd's own client reaches it (unix://name,
// a socket file in the working directory, name in etcd's host:port form;
// etcd's test clusters serve that way).
func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	e, _ := startEtcd(t, dir, "unix://localhost:2379")
	c := connect(t, etcdconf.Config{Endpoints: e.Endpoints()})
	ctx := context.Background()
	r, err := c.Txn(ctx, nil, []Op{Put("/k", []byte("v"))}, nil)
	if err != nil {
		t.Fatalf("%v: %v", e.Endpoints(), err)
	}
	if kv, err := c.WaitFor(ctx, "/k", State{Revision: r.Revision - 1}, valueIs("v")); err != nil || kv == nil {
		t.Fatalf("watch: %+v %v", kv, err)
	}
}

// The leader stops while reads and guarded writes are in flight through a
// follower: each is sent again until a new leader serves it (etcd answers
// "leader changed", "request timed out" meanwhile), none fails, and a
// guarded write whose first send etcd applied comes back Resent with its
// else branch.
func TestLeaderLoss(t *testing.T) {
	integration.BeforeTest(t, integration.WithoutGoLeakDetection())
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 3})
	defer clus.Terminate(t)
	lead := clus.WaitLeader(t)
	follower := (lead + 1) % 3
	c := connect(t, etcdconf.Config{Endpoints: []string{clus.Members[follower].GRPCURL}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 20
	errs := make(chan error, 2*n)
	go func() {
		for i := range n {
			createAndRead(ctx, c, fmt.Sprintf("/leader/%02d", i), errs)
		}
	}()
	time.Sleep(20 * time.Millisecond)
	clus.Members[lead].Stop(t)
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	kvs, _, err := c.List(ctx, "/leader/")
	if err != nil || len(kvs) != n {
		t.Fatalf("%d keys after the leader's loss: %v", len(kvs), err)
	}
}

// createAndRead creates key with a guarded write, then reads it, and sends
// each call's error to errs. A write that lost its guard must have been
// resent, its first send applied, and come back with the key.
func createAndRead(ctx context.Context, c *Client, key string, errs chan<- error) {
	r, err := c.Txn(ctx, []Cmp{ModRevisionIs(key, 0)}, []Op{Put(key, []byte("v"))}, []Op{Get(key)})
	if err == nil && !r.Succeeded && (!r.Resent || len(r.Results[0].KVs) == 0) {
		err = fmt.Errorf("create of %s lost its guard without a resend: %+v", key, r)
	}
	errs <- err
	_, _, err = c.Get(ctx, key)
	errs <- err
}

// followerOf3 starts a 3-member etcd cluster, terminated at the test's
// end, and returns it, its members' endpoints and a follower's index.
func followerOf3(t *testing.T) (*integration.Cluster, []string, int) {
	t.Helper()
	integration.BeforeTest(t, integration.WithoutGoLeakDetection())
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 3})
	t.Cleanup(func() { clus.Terminate(t) })
	var eps []string
	for _, m := range clus.Members {
		eps = append(eps, m.GRPCURL)
	}
	return clus, eps, (clus.WaitLeader(t) + 1) % 3
}

// The member a client sends to stops (kill, as the soak's faults do) while
// reads and guarded writes are in flight on it: each is sent again, to the
// members left, and none fails. A guarded write whose lost send etcd had
// applied comes back Resent with its else branch.
func TestMemberLossMidRequest(t *testing.T) {
	clus, eps, victim := followerOf3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const clients, n = 8, 40
	errs := make(chan error, 2*clients*n)
	started := make(chan struct{}, clients)
	for w := range clients {
		c := connect(t, etcdconf.Config{Endpoints: eps})
		c.next.Store(int32(victim))
		go func() {
			started <- struct{}{}
			for i := range n {
				createAndRead(ctx, c, fmt.Sprintf("/loss/%d/%02d", w, i), errs)
			}
		}()
	}
	for range clients {
		<-started
	}
	time.Sleep(5 * time.Millisecond)
	clus.Members[victim].Stop(t)
	for range 2 * clients * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A member cut off from the others answers a guarded write, after about
// 10 s here, with DeadlineExceeded ("context deadline exceeded") long
// before the caller's deadline: the write, and a read after it, go again
// to the next member, which serves them, as client/v3's balancer does,
// rather than fail or go to it until the caller's deadline (what failed a
// CNI DEL during an etcd fault).
func TestPartitionedMember(t *testing.T) {
	clus, eps, cut := followerOf3(t)
	var others []*integration.Member
	for i, m := range clus.Members {
		if i != cut {
			others = append(others, m)
		}
	}
	clus.Members[cut].InjectPartition(t, others...)
	defer clus.Members[cut].RecoverPartition(t, others...)
	c := connect(t, etcdconf.Config{Endpoints: eps})
	c.next.Store(int32(cut))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	if r, err := c.Txn(ctx, []Cmp{ModRevisionIs("/cut", 0)}, []Op{Put("/cut", []byte("v"))}, []Op{Get("/cut")}); err != nil || !r.Succeeded && !r.Resent {
		t.Fatalf("guarded write sent to a partitioned member: %+v %v after %v", r, err, time.Since(t0))
	}
	t.Logf("guarded write sent to a partitioned member served after %v", time.Since(t0))
	c.next.Store(int32(cut))
	if kv, _, err := c.Get(ctx, "/cut"); err != nil || kv == nil {
		t.Fatalf("read sent to a partitioned member: %v %v", kv, err)
	}
}
