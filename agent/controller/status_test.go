package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
	"github.com/uspace-io/uspace/store/embedetcd"
)

func TestStatusWriterBatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := embedetcd.Start(ctx, embedetcd.Config{Dir: t.TempDir(), ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	st, err := store.Connect(ctx, store.Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

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

	w := NewStatusWriter(st)
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
	w2 := NewStatusWriter(st)
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
