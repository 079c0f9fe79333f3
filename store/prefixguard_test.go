package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestApplyIfUnchanged(t *testing.T) {
	e := startEmbedded(t, filepath.Join(t.TempDir(), "etcd"))
	defer e.Close()
	ctx := context.Background()
	c, err := Connect(ctx, Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	_, rev, err := c.List(ctx, "p/")
	if err != nil {
		t.Fatal(err)
	}
	// Unchanged since the read: applied.
	if _, err := c.ApplyIfUnchanged(ctx, PrefixGuard{Prefix: "p/", Since: rev}, Op{Key: "p/a", Value: []byte("1"), Guard: CreateOnly()}); err != nil {
		t.Fatalf("unchanged prefix: %v", err)
	}
	// A writer that read before that put loses, naming the prefix, and
	// writes nothing.
	_, err = c.ApplyIfUnchanged(ctx, PrefixGuard{Prefix: "p/", Since: rev}, Op{Key: "p/b", Value: []byte("2"), Guard: CreateOnly()})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Key != "p/" || !errors.Is(err, ErrConflict) {
		t.Fatalf("stale prefix read: %v, want a ConflictError on p/", err)
	}
	if kv, _ := c.Get(ctx, "p/b"); kv != nil {
		t.Fatal("p/b written despite the conflict")
	}
	// Changes outside the prefix and deletes inside it do not count.
	_, rev, _ = c.List(ctx, "p/")
	if _, err := c.Apply(ctx, Op{Key: "q/x", Value: []byte("x")}, Op{Key: "p/a", Delete: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyIfUnchanged(ctx, PrefixGuard{Prefix: "p/", Since: rev}, Op{Key: "p/c", Value: []byte("3")}); err != nil {
		t.Fatalf("after an outside write and a delete: %v", err)
	}
	// The ops' own guards still apply.
	_, rev, _ = c.List(ctx, "p/")
	if _, err := c.ApplyIfUnchanged(ctx, PrefixGuard{Prefix: "p/", Since: rev}, Op{Key: "p/c", Value: []byte("4"), Guard: CreateOnly()}); !errors.As(err, &ce) || ce.Key != "p/c" {
		t.Fatalf("key guard under an unchanged prefix: %v", err)
	}
}
