package endpoint

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
	"github.com/uspace-io/uspace/store/embedetcd"
)

const host = "node1"

func TestViewNarrowsToOneContainer(t *testing.T) {
	v := newView(host, "a")
	in := func(p string) span { return prefixSpan(p) }
	for _, tc := range []struct {
		name  string
		s     span
		read  bool
		watch bool
		write bool
	}{
		{"own intents", in(schema.ContainerPrefix(host, "a")), true, true, false},
		{"own meta", span{key: []byte(schema.ContainerMetaKey(host, "a"))}, true, true, false},
		{"own statuses", in(schema.StatusContainerPrefix(host, "a")), true, false, true},
		{"host's containers (narrowed)", in(schema.ContainersPrefix(host)), true, true, false},
		{"other container", in(schema.ContainerPrefix(host, "b")), false, false, false},
		{"container ab", in(schema.ContainerPrefix(host, "ab")), false, false, false},
		{"other's status", span{key: []byte(schema.StatusContainerPrefix(host, "b") + "interfaces/net1")}, false, false, false},
		{"host interfaces", in(schema.InterfacesPrefix(host)), false, false, false},
		{"networks", in(schema.NetworksPrefix()), false, false, false},
		{"everything", span{[]byte{0}, []byte{0}}, false, false, false},
		{"from a's prefix on", span{[]byte(schema.ContainerPrefix(host, "a")), []byte{0}}, false, false, false},
	} {
		_, r := v.read(tc.s)
		_, w := v.watch(tc.s)
		if r != tc.read || w != tc.watch || v.write(tc.s) != tc.write {
			t.Errorf("%s: read %v watch %v write %v, want %v %v %v", tc.name, r, w, v.write(tc.s), tc.read, tc.watch, tc.write)
		}
	}
}

// world is an etcd, a host agent's endpoint set fed by its host watch as
// the host agent feeds it, and two containers' network namespaces.
type world struct {
	st   *store.Client
	set  *Set
	a, b ns.NetNS
}

func newWorld(t *testing.T) *world {
	if os.Getuid() != 0 {
		t.Skip("network namespaces need root")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e, err := embedetcd.Start(ctx, embedetcd.Config{Dir: t.TempDir(), ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	st, err := store.Connect(ctx, store.Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &world{st: st, set: New(host, st.Etcd(), slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))}
	for _, n := range []*ns.NetNS{&w.a, &w.b} {
		if *n, err = testutils.NewNS(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = (*n).Close(); _ = testutils.UnmountNS(*n) })
	}
	for c, n := range map[string]ns.NetNS{"a": w.a, "b": w.b} {
		w.put(t, schema.ContainerMetaKey(host, c), &schema.ContainerMeta{Host: host, Container: c, Netns: n.Path()})
		w.putRaw(t, schema.ContainerInterfaceKey(host, c, "net1"))
	}
	done := make(chan error, 1)
	go func() {
		done <- st.ListWatch(ctx, schema.HostPrefix(host), func(ev store.Event) error {
			w.set.Observe(ev)
			var kvs []store.KV
			switch ev.Type {
			case store.Sync:
				kvs = ev.Snapshot
			case store.Put:
				kvs = []store.KV{ev.KV}
			case store.Delete:
				return w.set.Reconcile(ctx, ev.KV.Key, nil)
			}
			for _, kv := range kvs {
				if err := w.set.Reconcile(ctx, kv.Key, &kv); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		w.set.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for w.set.Len() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("endpoints not opened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return w
}

func (w *world) put(t *testing.T, key string, o schema.Object) int64 {
	t.Helper()
	b, err := schema.Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := w.st.Etcd().Put(context.Background(), key, string(b))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// putRaw puts a value the endpoint passes on without reading.
func (w *world) putRaw(t *testing.T, key string) int64 {
	t.Helper()
	resp, err := w.st.Etcd().Put(context.Background(), key, "{}")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// client dials the endpoint as a process in netns n would: the socket is
// made and connected by a thread in n.
func client(t *testing.T, n ns.NetNS) *clientv3.Client {
	t.Helper()
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		var c net.Conn
		err := n.Do(func(ns.NetNS) error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, "unix", Name)
			return err
		})
		return c, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{URL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(dial), grpc.WithBlock()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// denied: etcd's refusal; a refused watch's is only its text, as etcd's
// own (client/v3 makes a plain error of the cancel reason).
func denied(t *testing.T, what string, err error) {
	t.Helper()
	if !store.IsDenied(err) && (err == nil || !strings.HasSuffix(err.Error(), "etcdserver: permission denied")) {
		t.Errorf("%s: %v, want permission denied", what, err)
	}
}

func TestEndpointServesOnlyItsContainer(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := client(t, w.a)

	r, err := a.Get(ctx, schema.ContainersPrefix(host), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) != 2 {
		t.Errorf("host's containers through a's endpoint: %d keys, want a's 2", len(r.Kvs))
	}
	for _, kv := range r.Kvs {
		if !strings.HasPrefix(string(kv.Key), schema.ContainerPrefix(host, "a")) {
			t.Errorf("a's endpoint showed %s", kv.Key)
		}
	}
	if _, err := a.Put(ctx, schema.StatusContainerPrefix(host, "a")+"interfaces/net1", "{}"); err != nil {
		t.Errorf("a writes its status: %v", err)
	}
	_, err = a.Get(ctx, schema.ContainerPrefix(host, "b"), clientv3.WithPrefix())
	denied(t, "read b's intents", err)
	_, err = a.Get(ctx, schema.StatusContainerPrefix(host, "b"), clientv3.WithPrefix())
	denied(t, "read b's statuses", err)
	_, err = a.Put(ctx, schema.StatusContainerPrefix(host, "b")+"interfaces/net1", "{}")
	denied(t, "write b's status", err)
	_, err = a.Put(ctx, schema.ContainerPrefix(host, "a")+"interfaces/net1", "{}")
	denied(t, "write a's intent", err)
	_, err = a.Delete(ctx, schema.StatusContainersPrefix(host), clientv3.WithPrefix())
	denied(t, "delete every container's statuses", err)
	_, err = a.Get(ctx, "", clientv3.WithFromKey())
	denied(t, "read everything", err)
	_, err = a.Get(ctx, schema.AgentKey(host))
	denied(t, "read the host agent's registration", err)
	_, err = a.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(schema.ContainerMetaKey(host, "b")), ">", 0)).
		Then(clientv3.OpPut(schema.StatusContainerPrefix(host, "a")+"x", "{}")).Commit()
	denied(t, "a transaction comparing b's meta", err)
	_, err = a.Grant(ctx, 10)
	denied(t, "grant a lease", err)
	_, err = a.Compact(ctx, 1)
	denied(t, "compact", err)
	wr := <-a.Watch(ctx, schema.ContainerPrefix(host, "b"), clientv3.WithPrefix())
	denied(t, "watch b's intents", wr.Err())
}

// A list-watch through the endpoint sees its container's changes in
// order and none of another's; a watch from before the hub's history is
// answered as compacted, one from inside it replays it.
func TestEndpointWatch(t *testing.T) {
	w := newWorld(t)
	a := store.New(client(t, w.a))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := make(chan store.Event, 16)
	go func() {
		_ = a.ListWatch(ctx, schema.ContainersPrefix(host), func(ev store.Event) error { evs <- ev; return nil })
	}()
	if ev := <-evs; ev.Type != store.Sync || len(ev.Snapshot) != 2 {
		t.Fatalf("first event %v with %d keys, want a sync of a's 2", ev.Type, len(ev.Snapshot))
	}
	w.putRaw(t, schema.ContainerInterfaceKey(host, "b", "net2"))
	rev := w.putRaw(t, schema.ContainerInterfaceKey(host, "a", "net2"))
	select {
	case ev := <-evs:
		if ev.Type != store.Put || ev.KV.Key != schema.ContainerInterfaceKey(host, "a", "net2") || ev.Revision != rev {
			t.Errorf("event %v %s at %d, want a's net2 put at %d", ev.Type, ev.KV.Key, ev.Revision, rev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a's put not delivered")
	}

	raw := client(t, w.a)
	wr := <-raw.Watch(ctx, schema.ContainerPrefix(host, "a"), clientv3.WithPrefix(), clientv3.WithRev(1))
	if !errors.Is(wr.Err(), rpctypes.ErrCompacted) {
		t.Errorf("watch from revision 1 (before the hub's history): %v, want compacted", wr.Err())
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := raw.Watch(wctx, schema.ContainerPrefix(host, "a"), clientv3.WithPrefix(), clientv3.WithRev(rev))
	wr = <-wch
	if len(wr.Events) != 1 || wr.Events[0].Kv.ModRevision != rev || wr.Events[0].Kv.Version != 1 {
		t.Errorf("watch from %d: %+v, want a's net2 put replayed", rev, wr.Events)
	}
	if err := raw.RequestProgress(wctx); err != nil {
		t.Fatal(err)
	}
	if wr = <-wch; !wr.IsProgressNotify() || wr.Header.Revision < rev {
		t.Errorf("progress request answered with %+v, want progress at %d or later", wr, rev)
	}
	// The host watch listed again (etcd compacted what it missed): every
	// open watch may have missed events too, and is told so.
	w.set.Observe(store.Event{Type: store.Sync, Revision: w.putRaw(t, "/elsewhere")})
	if wr = <-wch; !errors.Is(wr.Err(), rpctypes.ErrCompacted) {
		t.Errorf("open watch after the host watch's relist: %+v, want compacted", wr)
	}
	select {
	case ev := <-evs:
		if ev.Type != store.Sync {
			t.Errorf("list-watch after the relist: %v, want a new sync", ev.Type)
		}
	case <-time.After(10 * time.Second):
		t.Error("list-watch through the endpoint did not list again after its watch was compacted")
	}
}

// A meta's delete closes its endpoint: nothing listens in the namespace
// any more (so nothing keeps it alive), and a process outside a
// container's namespace never reaches its endpoint.
func TestEndpointClosedOnDelete(t *testing.T) {
	w := newWorld(t)
	if _, err := net.Dial("unix", Name); err == nil {
		t.Error("the endpoint is reachable outside every container's network namespace")
	}
	if !listening(t, w.a) {
		t.Fatal("a's endpoint is not listening")
	}
	if _, err := w.st.Etcd().Delete(context.Background(), schema.ContainerMetaKey(host, "a")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for listening(t, w.a) {
		if time.Now().After(deadline) {
			t.Fatal("a's endpoint still listening after its meta's delete")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !listening(t, w.b) {
		t.Error("b's endpoint closed with a's")
	}
}

// listening reads the unix sockets of netns n (/proc/net/unix as a
// thread in n sees it) for the endpoint's.
func listening(t *testing.T, n ns.NetNS) bool {
	t.Helper()
	var b []byte
	if err := n.Do(func(ns.NetNS) error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/unix")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), Name)
}
