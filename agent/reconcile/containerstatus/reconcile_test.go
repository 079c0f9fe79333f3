package containerstatus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/controller"
	"github.com/uspace-io/uspace/agent/reconcile/containerstatus"
	"github.com/uspace-io/uspace/agent/statuswriter"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

const host = "node1"

// env is a containers controller running a Reconciler against an
// embedded etcd, as the host agent wires them.
type env struct {
	st  *store.Client
	w   *statuswriter.Writer
	c   *controller.Controller
	rec *containerstatus.Reconciler
}

func newEnv(t *testing.T, grace time.Duration) *env {
	t.Helper()
	st := harness.StartEtcd(t).Store
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := statuswriter.New(st, log)
	rec := &containerstatus.Reconciler{St: st, Status: w, Grace: grace}
	c := controller.New("container-statuses", rec.Reconcile, nil, log)
	rec.Desired, rec.EnqueueAfter = c.Get, c.EnqueueAfter
	return &env{st: st, w: w, c: c, rec: rec}
}

// run starts the writer and the worker until the test ends.
func (e *env) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { e.w.Run(ctx); done <- struct{}{} }()
	go func() { e.c.Run(ctx, 1); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
}

func ifKey(container string) schema.Key {
	return schema.Key{Kind: schema.KindContainerInterfaceKey, Host: host, Container: container, Interface: "net1"}
}

func (e *env) put(ctx context.Context, t *testing.T, objs map[string]schema.Object) {
	t.Helper()
	var ops []store.Op
	for k, o := range objs {
		b, err := schema.Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, store.Op{Key: k, Value: b})
	}
	if _, err := e.st.Apply(ctx, ops...); err != nil {
		t.Fatal(err)
	}
}

func (e *env) statuses(ctx context.Context, t *testing.T) []string {
	t.Helper()
	kvs, _, err := e.st.List(ctx, schema.StatusHostPrefix(host))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	return keys
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Containers deleted while the host agent was down leave statuses and
// nothing else. The restarted agent removes them after the grace and then
// forgets each container: on main the grace map kept one entry per such
// container for as long as the agent ran. A live container keeps its
// status; once its meta goes, its status goes after the grace too, and
// it is forgotten as well.
func TestGoneContainersAreForgotten(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const grace = time.Second
	e := newEnv(t, grace)

	const gone = 20
	objs := map[string]schema.Object{}
	for i := range gone {
		objs[schema.StatusKey(ifKey(fmt.Sprintf("gone%02d", i)))] = &schema.InterfaceStatus{ObservedRevision: 1, Ready: true}
	}
	live := ifKey("live")
	liveMeta := schema.ContainerMetaKey(host, "live")
	liveIntent := &schema.ContainerInterface{Host: host, Container: "live", Name: "net1", Type: schema.IfTypeMemif,
		Memif: &schema.MemifSpec{Role: schema.MemifSlave, Mode: schema.MemifEthernet, SocketPath: "/run/x/memif.sock"}}
	objs[live.String()] = liveIntent
	objs[liveMeta] = &schema.ContainerMeta{Host: host, Container: "live", Interfaces: []string{"net1"}}
	objs[schema.StatusKey(live)] = &schema.InterfaceStatus{ObservedRevision: 1, Ready: true}
	e.put(ctx, t, objs)

	// What the host agent does at start: load the statuses, install the
	// intents' snapshot, queue the intent key of every status.
	prev, err := e.w.Load(ctx, schema.StatusHostPrefix(host))
	if err != nil {
		t.Fatal(err)
	}
	kvs, _, err := e.st.List(ctx, schema.ContainersPrefix(host))
	if err != nil {
		t.Fatal(err)
	}
	e.c.Replace(kvs)
	for _, kv := range prev {
		k, err := schema.ParseKey(kv.Key)
		if err != nil {
			t.Fatal(err)
		}
		e.c.Enqueue(k.IntentOf().String())
	}
	start := time.Now()
	e.run(t)

	eventually(t, "the gone containers' statuses removed", func() bool { return len(e.statuses(ctx, t)) == 1 })
	if took := time.Since(start); took < grace {
		t.Errorf("statuses removed after %v, before the grace of %v", took, grace)
	}
	if left := e.statuses(ctx, t); left[0] != schema.StatusKey(live) {
		t.Fatalf("left %v, want the live container's status only", left)
	}
	eventually(t, "every gone container forgotten", func() bool { return e.rec.Waiting() == 0 })

	// The live container's DEL: intent and meta go; its agent does not
	// remove the status (it stopped first), so the host agent does.
	e.c.Delete(live.String())
	e.c.Delete(liveMeta)
	eventually(t, "the container counted as gone", func() bool { return e.rec.Waiting() == 1 })
	eventually(t, "its status removed", func() bool { return len(e.statuses(ctx, t)) == 0 })
	eventually(t, "and the container forgotten", func() bool { return e.rec.Waiting() == 0 })
}
