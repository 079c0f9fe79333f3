package endpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	logs *logBuf // what the set logged
}

// logBuf is a log destination tests read while the set writes to it.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count is how many lines hold s.
func (l *logBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
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
	w := &world{st: st, logs: &logBuf{}}
	w.set = New(host, st.Etcd(), slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, w.logs), &slog.HandlerOptions{Level: slog.LevelWarn})))
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

// denied: etcd's refusal, as store.IsDenied knows it (a refused watch's
// included).
func denied(t *testing.T, what string, err error) {
	t.Helper()
	if !store.IsDenied(err) {
		t.Errorf("%s: %v, want permission denied", what, err)
	}
}

// eventually polls cond until it holds, for at most 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
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
	eventually(t, "a's endpoint closed after its meta's delete", func() bool { return !listening(t, w.a) })
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

// dialRaw connects to the endpoint in netns n without speaking gRPC.
func dialRaw(t *testing.T, n ns.NetNS) net.Conn {
	t.Helper()
	var c net.Conn
	if err := n.Do(func(ns.NetNS) error {
		var err error
		c, err = net.Dial("unix", Name)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// openStream opens a raw watch stream on cli's connection and has one
// watch of a's intents created on it.
func openStream(ctx context.Context, cli *clientv3.Client) (pb.Watch_WatchClient, error) {
	s, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx)
	if err != nil {
		return nil, err
	}
	if err := createWatch(s); err != nil {
		return nil, err
	}
	_, err = s.Recv()
	return s, err
}

func createWatch(s pb.Watch_WatchClient) error {
	key := schema.ContainerPrefix(host, "a")
	return s.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte(key), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(key))}}})
}

// One container cannot make the host agent keep more than MaxRequests
// calls, MaxWatches watches or MaxConnections connections for it: the
// next is refused, said so, and another container's endpoint serves on.
func TestEndpointBoundsOneContainer(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := client(t, w.a), client(t, w.b)

	t.Run("calls", func(t *testing.T) {
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		first, closeFirst := context.WithCancel(sctx)
		defer closeFirst()
		for i := range MaxRequests {
			c := sctx
			if i == 0 {
				c = first
			}
			if _, err := openStream(c, a); err != nil {
				t.Fatalf("watch stream %d: %v", i+1, err)
			}
		}
		if _, err := openStream(sctx, a); status.Code(err) != codes.ResourceExhausted {
			t.Errorf("watch stream %d: %v, want ResourceExhausted", MaxRequests+1, err)
		}
		if _, err := a.Get(ctx, schema.ContainerPrefix(host, "a"), clientv3.WithPrefix()); status.Code(err) != codes.ResourceExhausted ||
			!strings.Contains(err.Error(), "too many calls") {
			t.Errorf("a's read over the bound: %v, want ResourceExhausted, too many calls", err)
		}
		if _, err := b.Get(ctx, schema.ContainerPrefix(host, "b"), clientv3.WithPrefix()); err != nil {
			t.Errorf("b's read while a is at its bound: %v", err)
		}
		closeFirst()
		eventually(t, "a's read once a stream closed", func() bool {
			_, err := a.Get(ctx, schema.ContainerPrefix(host, "a"), clientv3.WithPrefix())
			return err == nil
		})
	})

	t.Run("watches", func(t *testing.T) {
		s, err := openStream(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		for range MaxWatches - 1 {
			if err := createWatch(s); err != nil {
				t.Fatal(err)
			}
			if r, err := s.Recv(); err != nil || r.Canceled {
				t.Fatalf("watch within the bound: %v %+v", err, r)
			}
		}
		if err := createWatch(s); err != nil {
			t.Fatal(err)
		}
		r, err := s.Recv()
		if err != nil || !r.Canceled || r.CancelReason != ErrTooManyWatches {
			t.Fatalf("watch %d: %v %+v, want cancelled: %s", MaxWatches+1, err, r, ErrTooManyWatches)
		}
		wr := <-b.Watch(clientv3.WithRequireLeader(ctx), schema.ContainerPrefix(host, "b"), clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		if wr.Err() != nil || !wr.Created {
			t.Errorf("b's watch while a is at its bound: %v", wr.Err())
		}
		if err := s.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 0}}}); err != nil {
			t.Fatal(err)
		}
		if r, err = s.Recv(); err != nil || !r.Canceled || r.WatchId != 0 {
			t.Fatalf("cancel of watch 0: %v %+v", err, r)
		}
		if err := createWatch(s); err != nil {
			t.Fatal(err)
		}
		if r, err = s.Recv(); err != nil || r.Canceled {
			t.Errorf("watch after one was cancelled: %v %+v, want created", err, r)
		}
	})

	t.Run("connections", func(t *testing.T) {
		// a's client holds one connection already.
		var raws []net.Conn
		for range MaxConnections - 1 {
			raws = append(raws, dialRaw(t, w.a))
		}
		// A container knocking on and on logs one line a RefusalLogInterval.
		for i := range 20 {
			extra := dialRaw(t, w.a)
			_ = extra.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := extra.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("connection %d read: %v, want closed by the endpoint", MaxConnections+1+i, err)
			}
			extra.Close()
		}
		if n := w.logs.count("endpoint connections refused"); n != 1 {
			t.Errorf("20 refused connections logged %d lines, want 1", n)
		}
		if _, err := b.Get(ctx, schema.ContainerPrefix(host, "b"), clientv3.WithPrefix()); err != nil {
			t.Errorf("b's read while a is at its bound: %v", err)
		}
		if _, err := a.Get(ctx, schema.ContainerPrefix(host, "a"), clientv3.WithPrefix()); err != nil {
			t.Errorf("a's read on its connection within the bound: %v", err)
		}
		raws[0].Close()
		eventually(t, "a new connection once one closed", func() bool {
			c := dialRaw(t, w.a)
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			_, err := c.Read(make([]byte, 1))
			var ne net.Error
			return errors.As(err, &ne) && ne.Timeout() || err == nil
		})
	})
}

// A meta's delete ends the endpoint's watch streams only after they have
// sent what the hub holds: the container agent hears of the DEL's deletes.
func TestEndpointDeliversTheDeleteBeforeClosing(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := client(t, w.a)
	wch := a.Watch(clientv3.WithRequireLeader(ctx), schema.ContainerPrefix(host, "a"), clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	if wr := <-wch; !wr.Created {
		t.Fatalf("watch not created: %v", wr.Err())
	}
	// As the CNI DEL of the container's last interface: one transaction.
	if _, err := w.st.Etcd().Txn(ctx).Then(clientv3.OpDelete(schema.ContainerInterfaceKey(host, "a", "net1")),
		clientv3.OpDelete(schema.ContainerMetaKey(host, "a"))).Commit(); err != nil {
		t.Fatal(err)
	}
	deleted := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for len(deleted) < 2 {
		select {
		case wr := <-wch:
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					deleted[string(ev.Kv.Key)] = true
				}
			}
			if wr.Err() != nil {
				t.Fatalf("watch ended (%v) with deletes %v, want both of the DEL's", wr.Err(), deleted)
			}
		case <-timeout:
			t.Fatalf("deletes seen: %v, want the interface's and the meta's", deleted)
		}
	}
	eventually(t, "a's endpoint closed after its meta's delete", func() bool { return !listening(t, w.a) })
}

// A stream never gives a watch the ID of one it closed, as etcd: client/v3
// cancels a closed watch's ID when a late response for it comes, which
// would cancel the new one.
func TestEndpointWatchIDsNotReused(t *testing.T) {
	w := newWorld(t)
	s, err := openStream(context.Background(), client(t, w.a))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 0}}}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); err != nil || !r.Canceled || r.WatchId != 0 {
		t.Fatalf("cancel of watch 0: %v %+v", err, r)
	}
	if err := createWatch(s); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); err != nil || !r.Created || r.WatchId == 0 {
		t.Errorf("watch after watch 0's cancel: %v %+v, want created with another ID", err, r)
	}
}

// A meta naming the host agent's own network namespace, by any path,
// gets no endpoint: every process of the host would reach that
// container's view. Metas after it still get theirs.
func TestEndpointNotInAgentsOwnNetns(t *testing.T) {
	w := newWorld(t)
	w.put(t, schema.ContainerMetaKey(host, "c"), &schema.ContainerMeta{Host: host, Container: "c", Netns: "/proc/self/ns/net"})
	w.put(t, schema.ContainerMetaKey(host, "d"), &schema.ContainerMeta{Host: host, Container: "d", Netns: fmt.Sprintf("/proc/%d/ns/net", os.Getpid())})
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(); _ = testutils.UnmountNS(n) })
	// Metas are reconciled in order: once e's endpoint is open, c's and
	// d's have been decided.
	w.put(t, schema.ContainerMetaKey(host, "e"), &schema.ContainerMeta{Host: host, Container: "e", Netns: n.Path()})
	eventually(t, "e's endpoint open", func() bool { return listening(t, n) })
	if got := w.set.Len(); got != 3 {
		t.Errorf("%d endpoints open, want 3 (a, b, e)", got)
	}
	if c, err := net.Dial("unix", Name); err == nil {
		c.Close()
		t.Error("an endpoint listens in the host agent's own network namespace")
	}
}
