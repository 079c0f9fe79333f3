package statuswriter

import (
	"context"
	"fmt"
	"log/slog"
	"os"
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
