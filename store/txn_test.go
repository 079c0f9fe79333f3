package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/tests/v3/framework/integration"
)

func TestApply(t *testing.T) {
	integration.BeforeTest(t)
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 3})
	defer clus.Terminate(t)
	clients := []*Client{New(clus.Client(0)), New(clus.Client(1)), New(clus.Client(2))}
	ctx := context.Background()

	t.Run("concurrent CreateOnly: one wins, losers write nothing", func(t *testing.T) {
		const writers = 12
		type result struct {
			rev int64
			err error
		}
		results := make([]result, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				v := []byte(fmt.Sprintf("w%d", i))
				rev, err := clients[i%3].Apply(ctx,
					Op{Key: fmt.Sprintf("race/own-%02d", i), Value: v, Guard: CreateOnly()},
					Op{Key: "race/shared-a", Value: v, Guard: CreateOnly()},
					Op{Key: "race/shared-b", Value: v, Guard: CreateOnly()},
				)
				results[i] = result{rev, err}
			}()
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, r := range results {
			if r.err == nil {
				if winner >= 0 {
					t.Fatalf("writers %d and %d both won", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no writer won")
		}
		for i, r := range results {
			if i == winner {
				continue
			}
			var conflict *ConflictError
			if !errors.Is(r.err, ErrConflict) || !errors.As(r.err, &conflict) {
				t.Fatalf("writer %d: %v, want a ConflictError", i, r.err)
			}
			// own-i held, so the first failing guard is the shared key.
			if conflict.Key != "race/shared-a" || conflict.ModRevision != results[winner].rev {
				t.Fatalf("writer %d: conflict on %q at %d, want race/shared-a at %d (%v)", i, conflict.Key, conflict.ModRevision, results[winner].rev, r.err)
			}
		}
		kvs, _, err := clients[0].List(ctx, "race/")
		if err != nil {
			t.Fatal(err)
		}
		w := fmt.Sprintf("w%d", winner)
		want := fmt.Sprintf("sync race/own-%02d=%s race/shared-a=%s race/shared-b=%s", winner, w, w, w)
		if got := fmtKVs(kvs); got != want {
			t.Fatalf("after the race etcd holds %q, want %q", got, want)
		}
		for _, kv := range kvs {
			if kv.ModRevision != results[winner].rev || kv.CreateRevision != results[winner].rev {
				t.Fatalf("%s at mod %d create %d, want both %d", kv.Key, kv.ModRevision, kv.CreateRevision, results[winner].rev)
			}
		}
	})

	t.Run("ModRevision guard", func(t *testing.T) {
		c := clients[0]
		rev1, err := c.Apply(ctx, Op{Key: "cas/x", Value: []byte("1"), Guard: ModRevision(0)})
		if err != nil {
			t.Fatal(err)
		}
		rev2, err := c.Apply(ctx, Op{Key: "cas/x", Value: []byte("2"), Guard: ModRevision(rev1)}, Op{Key: "cas/y", Value: []byte("new")})
		if err != nil || rev2 <= rev1 {
			t.Fatalf("CAS at the current revision: rev %d, %v", rev2, err)
		}
		// Stale revision: nothing of the transaction lands, not even the
		// unguarded op listed first.
		_, err = c.Apply(ctx, Op{Key: "cas/y", Value: []byte("lost")}, Op{Key: "cas/x", Value: []byte("3"), Guard: ModRevision(rev1)})
		var conflict *ConflictError
		if !errors.As(err, &conflict) || conflict.Key != "cas/x" || conflict.ModRevision != rev2 {
			t.Fatalf("stale CAS: %v, want a conflict on cas/x at %d", err, rev2)
		}
		wantMsg := fmt.Sprintf(`conflict: key "cas/x" must be at mod revision %d but is at mod revision %d`, rev1, rev2)
		if err.Error() != wantMsg {
			t.Fatalf("error %q, want %q", err, wantMsg)
		}
		for key, want := range map[string]string{"cas/x": "2", "cas/y": "new"} {
			kv, err := c.Get(ctx, key)
			if err != nil || kv == nil || string(kv.Value) != want {
				t.Fatalf("%s = %+v, %v; want %q", key, kv, err, want)
			}
		}
		if _, err := c.Apply(ctx, Op{Key: "cas/x", Value: []byte("4"), Guard: ModRevision(0)}); !errors.Is(err, ErrConflict) {
			t.Fatalf("ModRevision(0) on an existing key: %v", err)
		}
		_, err = c.Apply(ctx, Op{Key: "cas/absent", Delete: true, Guard: Exists()})
		if !errors.As(err, &conflict) || conflict.Key != "cas/absent" || conflict.ModRevision != 0 ||
			err.Error() != `conflict: key "cas/absent" must exist but is absent` {
			t.Fatalf("Exists on an absent key: %v", err)
		}
		if _, err := c.Apply(ctx, Op{Key: "cas/x", Delete: true, Guard: Exists()}); err != nil {
			t.Fatal(err)
		}
		if kv, err := c.Get(ctx, "cas/x"); kv != nil || err != nil {
			t.Fatalf("deleted key: %+v, %v", kv, err)
		}
	})

	t.Run("concurrent read-modify-write loses no increment", func(t *testing.T) {
		const workers, increments = 6, 5
		var wg sync.WaitGroup
		errc := make(chan error, workers)
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := clients[i%3]
				for done := 0; done < increments; {
					kv, err := c.Get(ctx, "counter")
					if err != nil {
						errc <- err
						return
					}
					n, rev := 0, int64(0)
					if kv != nil {
						n, _ = strconv.Atoi(string(kv.Value))
						rev = kv.ModRevision
					}
					_, err = c.Apply(ctx, Op{Key: "counter", Value: []byte(strconv.Itoa(n + 1)), Guard: ModRevision(rev)})
					switch {
					case err == nil:
						done++
					case !errors.Is(err, ErrConflict):
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		kv, err := clients[0].Get(ctx, "counter")
		if err != nil || kv == nil || string(kv.Value) != strconv.Itoa(workers*increments) {
			t.Fatalf("counter = %+v, %v; want %d", kv, err, workers*increments)
		}
	})

	t.Run("limits are checked before sending", func(t *testing.T) {
		c := clients[0]
		var ops []Op
		for i := range MaxOps + 1 {
			ops = append(ops, Op{Key: fmt.Sprintf("limit/%03d", i), Value: []byte("x")})
		}
		_, err := c.Apply(ctx, ops...)
		if err == nil || !strings.Contains(err.Error(), "129 operations") || !strings.Contains(err.Error(), "at most 128") {
			t.Fatalf("129 ops: %v", err)
		}
		if rev, err := c.Apply(ctx, ops[:MaxOps]...); err != nil || rev == 0 {
			t.Fatalf("128 ops: %d, %v", rev, err)
		}
		_, err = c.Apply(ctx, Op{Key: "dup", Value: []byte("1")}, Op{Key: "dup", Delete: true})
		if err == nil || err.Error() != `apply: key "dup" appears twice in one transaction` {
			t.Fatalf("duplicate key: %v", err)
		}
		if _, err := c.Apply(ctx); err == nil {
			t.Fatal("empty transaction accepted")
		}
		if _, err := c.Apply(ctx, Op{Value: []byte("x")}); err == nil {
			t.Fatal("empty key accepted")
		}
	})

	t.Run("Get", func(t *testing.T) {
		c := clients[1]
		if kv, err := c.Get(ctx, "get/absent"); kv != nil || err != nil {
			t.Fatalf("absent key: %+v, %v", kv, err)
		}
		rev := mustPut(t, clus.Client(0), "get/k", "v")
		kv, err := c.Get(ctx, "get/k")
		if err != nil || kv == nil || kv.Key != "get/k" || string(kv.Value) != "v" || kv.ModRevision != rev || kv.CreateRevision != rev || kv.Lease != 0 {
			t.Fatalf("get/k = %+v, %v; want v at %d", kv, err, rev)
		}
	})

	t.Run("List pages through 10000 keys at one revision while others write", func(t *testing.T) {
		const n = 10000
		var ops []Op
		for i := range n {
			ops = append(ops, Op{Key: fmt.Sprintf("big/k%05d", i), Value: []byte(strconv.Itoa(i))})
			if len(ops) == MaxOps || i == n-1 {
				if _, err := clients[0].Apply(ctx, ops...); err != nil {
					t.Fatal(err)
				}
				ops = nil
			}
		}
		stop := make(chan struct{})
		writerDone := make(chan struct{})
		go func() {
			defer close(writerDone)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := clus.Client(1).Put(ctx, fmt.Sprintf("big/zz%05d", i), "late"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		kvs, rev, err := clients[2].List(ctx, "big/")
		close(stop)
		<-writerDone
		if err != nil {
			t.Fatal(err)
		}
		atRev, err := clus.Client(0).Get(ctx, "big/", clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(kvs)) != atRev.Count {
			t.Fatalf("List returned %d keys, etcd had %d at revision %d", len(kvs), atRev.Count, rev)
		}
		for i, kv := range kvs {
			if kv.ModRevision > rev {
				t.Fatalf("%s modified at %d, after the list revision %d", kv.Key, kv.ModRevision, rev)
			}
			if i > 0 && kvs[i-1].Key >= kv.Key {
				t.Fatalf("keys out of order: %s before %s", kvs[i-1].Key, kv.Key)
			}
			if i < n && (kv.Key != fmt.Sprintf("big/k%05d", i) || string(kv.Value) != strconv.Itoa(i)) {
				t.Fatalf("key %d is %s=%s", i, kv.Key, kv.Value)
			}
		}
		if len(kvs) < n {
			t.Fatalf("List returned %d keys, want at least %d", len(kvs), n)
		}
	})
}
