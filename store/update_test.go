package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// Against a real etcd: concurrent read-modify-writes of one key lose no
// update, fn's answers mean write, keep and delete, and allocations under
// a prefix never hand out a number twice.
func TestUpdate(t *testing.T) {
	e := startEmbedded(t, filepath.Join(t.TempDir(), "etcd"))
	defer e.Close()
	ctx := context.Background()
	var clients []*Client
	for range 3 {
		c, err := Connect(ctx, Config{Endpoints: e.Endpoints()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	c := clients[0]

	t.Run("concurrent increments all land", func(t *testing.T) {
		const writers, each = 6, 5
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					_, err := clients[i%3].Update(ctx, "u/counter", func(old *KV) ([]byte, error) {
						n := 0
						if old != nil {
							n, _ = strconv.Atoi(string(old.Value))
						}
						return []byte(strconv.Itoa(n + 1)), nil
					})
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if kv, err := c.Get(ctx, "u/counter"); err != nil || string(kv.Value) != strconv.Itoa(writers*each) {
			t.Fatalf("counter %v %v, want %d", kv, err, writers*each)
		}
	})

	t.Run("keep, delete, error", func(t *testing.T) {
		kv, _ := c.Get(ctx, "u/counter")
		rev, err := c.Update(ctx, "u/counter", func(old *KV) ([]byte, error) { return old.Value, nil })
		if err != nil || rev != kv.ModRevision {
			t.Fatalf("keep: rev %d %v, want %d and no write", rev, err, kv.ModRevision)
		}
		boom := errors.New("boom")
		if _, err := c.Update(ctx, "u/counter", func(*KV) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("fn error: %v", err)
		}
		rev, err = c.Update(ctx, "u/counter", func(*KV) ([]byte, error) { return nil, nil })
		if err != nil || rev <= kv.ModRevision {
			t.Fatalf("delete: %d %v", rev, err)
		}
		if kv, _ := c.Get(ctx, "u/counter"); kv != nil {
			t.Fatalf("deleted key still there: %v", kv)
		}
		if rev, err := c.Update(ctx, "u/counter", func(*KV) ([]byte, error) { return nil, nil }); err != nil || rev != 0 {
			t.Fatalf("delete of an absent key: %d %v", rev, err)
		}
	})

	t.Run("a conflict that never ends is reported", func(t *testing.T) {
		n := 0
		err := RetryOnConflict(ctx, func() error { n++; return &ConflictError{Key: "k"} })
		if !errors.Is(err, ErrConflict) || n != ConflictAttempts {
			t.Fatalf("after %d attempts: %v", n, err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := RetryOnConflict(cctx, func() error { return &ConflictError{Key: "k"} }); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled: %v", err)
		}
	})

	t.Run("allocations under a prefix are unique", func(t *testing.T) {
		const writers = 8
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := fmt.Sprintf("alloc/%02d", i)
				_, err := clients[i%3].UpdateUnderPrefix(ctx, "alloc/", key, func(list []KV, old *KV) ([]byte, error) {
					if old != nil {
						return old.Value, nil
					}
					taken := map[string]bool{}
					for _, kv := range list {
						taken[string(kv.Value)] = true
					}
					for n := 0; ; n++ {
						if !taken[strconv.Itoa(n)] {
							return []byte(strconv.Itoa(n)), nil
						}
					}
				})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		kvs, _, err := c.List(ctx, "alloc/")
		if err != nil || len(kvs) != writers {
			t.Fatalf("%d allocations %v", len(kvs), err)
		}
		seen := map[string]string{}
		for _, kv := range kvs {
			if other, dup := seen[string(kv.Value)]; dup {
				t.Fatalf("%s and %s both hold %s", other, kv.Key, kv.Value)
			}
			seen[string(kv.Value)] = kv.Key
		}
		if _, err := c.UpdateUnderPrefix(ctx, "alloc/", "elsewhere", nil); err == nil {
			t.Fatal("a key outside the prefix was accepted")
		}
	})
}
