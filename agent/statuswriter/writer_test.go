package statuswriter

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
	"github.com/uspace-io/uspace/store/embedetcd"
)

// startEtcd runs an embedded etcd for one test and connects to it; the
// test's cleanup stops both.
func startEtcd(ctx context.Context, t *testing.T) (*embedetcd.Etcd, *store.Client) {
	t.Helper()
	e, err := embedetcd.Start(ctx, embedetcd.Config{Dir: t.TempDir(), ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	st, err := store.Connect(ctx, store.Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return e, st
}

// newWriter makes a writer whose Run lasts until the test ends.
func newWriter(t *testing.T, st *store.Client) *Writer {
	t.Helper()
	w := New(st, slog.Default())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func TestStatusWriterBatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, st := startEtcd(ctx, t)

	rev := func() int64 {
		t.Helper()
		rev, err := st.Apply(ctx, store.Op{Key: "probe", Value: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	status := func(r int64) *schema.InterfaceStatus {
		return &schema.InterfaceStatus{ObservedRevision: r, Ready: true}
	}
	const n = 1000
	key := func(i int) string { return fmt.Sprintf("s/%04d", i) }

	w := newWriter(t, st)
	before := rev()
	for i := range n {
		if err := w.Put(ctx, key(i), status(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Each transaction is one revision; the probe is another.
	if txns := rev() - before - 1; txns < (n+store.MaxOps-1)/store.MaxOps || txns > n/10 {
		t.Fatalf("%d statuses took %d transactions", n, txns)
	}
	kvs, _, err := st.List(ctx, "s/")
	if err != nil || len(kvs) != n {
		t.Fatalf("listed %d statuses, %v", len(kvs), err)
	}

	// Unchanged: nothing written.
	before = rev()
	for i := range n {
		if err := w.Put(ctx, key(i), status(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rev(); got != before+1 {
		t.Fatalf("unchanged statuses were written: revision %d -> %d", before, got)
	}

	// The last change of a key wins; deletes go out too.
	if err := w.Put(ctx, key(0), status(2)); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete(ctx, key(1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(ctx, key(0), status(3)); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete(ctx, "s/unknown"); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	kvs, _, err = st.List(ctx, "s/")
	if err != nil || len(kvs) != n-1 {
		t.Fatalf("listed %d statuses, %v; want %d", len(kvs), err, n-1)
	}
	got, err := schema.DecodeAs[schema.InterfaceStatus](kvs[0].Value)
	if err != nil || kvs[0].Key != key(0) || got.ObservedRevision != 3 {
		t.Fatalf("%s = %+v, %v; want observed revision 3", kvs[0].Key, got, err)
	}

	// A fresh writer loads what is there and rewrites nothing.
	w2 := newWriter(t, st)
	if _, err := w2.Load(ctx, "s/"); err != nil {
		t.Fatal(err)
	}
	before = rev()
	if err := w2.Put(ctx, key(0), status(3)); err != nil {
		t.Fatal(err)
	}
	if err := w2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rev(); got != before+1 {
		t.Fatalf("loaded status was rewritten: revision %d -> %d", before, got)
	}
	// What it loaded reads back as what was written, and a change of it
	// is written.
	if b, ok := w2.Get(key(0)); !ok {
		t.Fatalf("loaded status %s unknown to Get", key(0))
	} else if got, err := schema.DecodeAs[schema.InterfaceStatus](b); err != nil || got.ObservedRevision != 3 {
		t.Fatalf("Get(%s) = %+v, %v; want observed revision 3", key(0), got, err)
	}
	if err := w2.Put(ctx, key(0), status(4)); err != nil {
		t.Fatal(err)
	}
	if err := w2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	kv, err := st.Get(ctx, key(0))
	if err != nil || kv == nil {
		t.Fatalf("get %s: %v", key(0), err)
	}
	if got, err := schema.DecodeAs[schema.InterfaceStatus](kv.Value); err != nil || got.ObservedRevision != 4 {
		t.Fatalf("%s = %+v, %v after a changed Put over a loaded status; want observed revision 4", key(0), got, err)
	}
}

// A status write etcd refuses (no permission) is not retried forever in
// silence: the writer stops, says why (Err, Failed), counts it, and every
// later Put fails with that reason.
func TestStatusWriterPermissionErrorIsTerminal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, admin := startEtcd(ctx, t)
	// A container identity may write only its host's container statuses.
	const pw = "a-password-for-this-test"
	role := rbac.ContainersRole("h1")
	if _, err := rbac.EnsureIdentity(ctx, admin, role, rbac.UserSpec{Password: pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.EnsureRoot(ctx, admin, "root-pw"); err != nil {
		t.Fatal(err)
	}
	if err := rbac.EnableAuth(ctx, admin); err != nil {
		t.Fatal(err)
	}
	pwFile := t.TempDir() + "/pw"
	if err := os.WriteFile(pwFile, []byte(pw), 0o600); err != nil {
		t.Fatal(err)
	}
	// Generous: password checks (bcrypt) are slow on a loaded machine under -race.
	st, err := store.Connect(ctx, store.Config{Endpoints: e.Endpoints(), Username: role.Name, PasswordFile: pwFile, DialTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	w := newWriter(t, st)
	outside := schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: "h1", Container: "c", Interface: "eth0"})
	if err := w.Put(ctx, outside, &schema.InterfaceStatus{ObservedRevision: 1, Ready: true}); err != nil {
		t.Fatalf("first Put (asynchronous): %v", err)
	}
	select {
	case <-w.Failed():
	case <-ctx.Done():
		t.Fatal("a refused status write was retried without end")
	}
	if err := w.Err(); err == nil || !store.IsDenied(err) {
		t.Fatalf("Err() = %v, want etcd's permission error", err)
	}
	if w.Failures() != 1 {
		t.Errorf("%d failures counted, want 1", w.Failures())
	}
	if err := w.Flush(ctx); err == nil {
		t.Error("Flush after a refused write succeeded")
	}
	inside := schema.StatusKey(schema.Key{Kind: schema.KindContainerInterfaceKey, Host: "h1", Container: "c", Interface: "eth0"})
	if err := w.Put(ctx, inside, &schema.InterfaceStatus{ObservedRevision: 1, Ready: true}); err == nil || !store.IsDenied(err) {
		t.Fatalf("Put after the writer gave up: %v, want the refusal", err)
	}
}

// A change etcd refuses on its own for a reason other than the identity
// (here a value over etcd's request limit) does not hold up the statuses
// put after it: they are written, the refused one is reported (Err,
// Written) and retried alone, and a newer change of its key replaces it.
func TestStatusWriterRefusedChangeDoesNotBlockOthers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, st := startEtcd(ctx, t)
	w := newWriter(t, st)

	huge := &schema.InterfaceStatus{ObservedRevision: 1, Error: strings.Repeat("x", 1700<<10)}
	if err := w.Put(ctx, "s/huge", huge); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := w.Put(ctx, fmt.Sprintf("s/%d", i), &schema.InterfaceStatus{ObservedRevision: 1, Ready: true}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		key := fmt.Sprintf("s/%d", i)
		if err := written(ctx, w, key); err != nil {
			t.Fatalf("%s held up by a refused status: %v", key, err)
		}
		if kv, err := st.Get(ctx, key); err != nil || kv == nil {
			t.Fatalf("%s not in etcd after Written: %v", key, err)
		}
	}
	if err := w.Written(ctx, "s/huge"); err == nil || !strings.Contains(err.Error(), "request is too large") {
		t.Fatalf("Written of the refused status: %v, want etcd's refusal", err)
	}
	if err := w.Err(); err == nil || !strings.Contains(err.Error(), "request is too large") {
		t.Fatalf("Err() = %v, want the refusal reported", err)
	}
	select {
	case <-w.Failed():
		t.Fatal("a refused value ended the writer as if the identity were refused")
	default:
	}
	// Replaced by a value etcd takes: written, and nothing is failing.
	if err := w.Put(ctx, "s/huge", &schema.InterfaceStatus{ObservedRevision: 2, Error: "short"}); err != nil {
		t.Fatal(err)
	}
	if err := written(ctx, w, "s/huge"); err != nil {
		t.Fatal(err)
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Err() = %v after the refused change was replaced", err)
	}
}

// written waits for key's change, riding out the early returns that the
// failure of another change in its transaction causes.
func written(ctx context.Context, w *Writer, key string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		err := w.Written(ctx, key)
		if err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Written confirms a change is in etcd, where Get also returns one only
// put: before Run has written it, Written does not return success; once
// it has, the value is in etcd.
func TestStatusWriterWrittenMeansInEtcd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, st := startEtcd(ctx, t)
	w := New(st, slog.Default())
	if err := w.Put(ctx, "s/a", &schema.InterfaceStatus{ObservedRevision: 1, Ready: true}); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Get("s/a"); !ok {
		t.Fatal("Get does not return the change put")
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if err := w.Written(short, "s/a"); err == nil {
		t.Fatal("Written returned success for a change nothing wrote")
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(runCtx) }()
	defer func() { stop(); <-done }()
	if err := w.Written(ctx, "s/a"); err != nil {
		t.Fatal(err)
	}
	if kv, err := st.Get(ctx, "s/a"); err != nil || kv == nil {
		t.Fatalf("s/a not in etcd after Written: %+v, %v", kv, err)
	}
	if err := w.Written(ctx, "s/a"); err != nil {
		t.Fatalf("Written of a change already written: %v", err)
	}
}
