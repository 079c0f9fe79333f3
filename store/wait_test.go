package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/tests/v3/framework/integration"
)

// observedAtLeast is the CNI plugin's question: has the agent applied
// revision rev? A status of "error" is an answer too.
func observedAtLeast(rev int64) func(kv *KV) (bool, error) {
	return func(kv *KV) (bool, error) {
		if kv == nil {
			return false, nil
		}
		if string(kv.Value) == "error" {
			return false, errors.New("agent reported an error")
		}
		n, _ := strconv.ParseInt(string(kv.Value), 10, 64)
		return n >= rev, nil
	}
}

func TestWaitFor(t *testing.T) {
	integration.BeforeTest(t)
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 3})
	defer clus.Terminate(t)
	c, writer := New(clus.Client(0)), clus.Client(1)
	ctx := context.Background()

	t.Run("already satisfied", func(t *testing.T) {
		rev := mustPut(t, writer, "status/ready", "5")
		calls := 0
		kv, err := c.WaitFor(ctx, "status/ready", rev, func(kv *KV) (bool, error) {
			calls++
			return observedAtLeast(5)(kv)
		})
		if err != nil || kv == nil || string(kv.Value) != "5" || kv.ModRevision != rev || calls != 1 {
			t.Fatalf("got %+v, %v after %d calls; want 5 at %d after 1 call", kv, err, calls, rev)
		}
	})

	t.Run("satisfied by a later put, seeing absence and every change before", func(t *testing.T) {
		var seen []string
		type result struct {
			kv  *KV
			err error
		}
		done := make(chan result, 1)
		started := make(chan struct{})
		go func() {
			kv, err := c.WaitFor(ctx, "status/later", 0, func(kv *KV) (bool, error) {
				if kv == nil {
					seen = append(seen, "absent")
					if len(seen) == 1 {
						close(started)
					}
				} else {
					seen = append(seen, string(kv.Value))
				}
				return observedAtLeast(10)(kv)
			})
			done <- result{kv, err}
		}()
		<-started
		mustPut(t, writer, "status/later", "3")
		if _, err := writer.Delete(ctx, "status/later"); err != nil {
			t.Fatal(err)
		}
		mustPut(t, writer, "status/later-other", "99")
		rev := mustPut(t, writer, "status/later", "10")
		mustPut(t, writer, "status/later", "11")
		r := <-done
		if r.err != nil || r.kv == nil || string(r.kv.Value) != "10" || r.kv.ModRevision != rev {
			t.Fatalf("got %+v, %v; want 10 at %d", r.kv, r.err, rev)
		}
		if got := strings.Join(seen, ","); got != "absent,3,absent,10" {
			t.Fatalf("cond saw %s, want absent,3,absent,10", got)
		}
	})

	t.Run("deadline: clear error with the last state seen", func(t *testing.T) {
		rev := mustPut(t, writer, "status/slow", "1")
		tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		kv, err := c.WaitFor(tctx, "status/slow", rev, observedAtLeast(2))
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Fatalf("returned after %v", elapsed)
		}
		want := `waiting for "status/slow" (from revision ` + strconv.FormatInt(rev, 10) +
			`) to reach the awaited state, last seen the key at mod revision ` + strconv.FormatInt(rev, 10) + `: context deadline exceeded`
		if !errors.Is(err, context.DeadlineExceeded) || err.Error() != want {
			t.Fatalf("error %q,\nwant  %q", err, want)
		}
		if kv == nil || string(kv.Value) != "1" {
			t.Fatalf("last state %+v, want value 1", kv)
		}
	})

	t.Run("condition error is returned with the state that caused it", func(t *testing.T) {
		mustPut(t, writer, "status/broken", "1")
		done := make(chan error, 1)
		var got *KV
		go func() {
			var err error
			got, err = c.WaitFor(ctx, "status/broken", 0, observedAtLeast(5))
			done <- err
		}()
		rev := mustPut(t, writer, "status/broken", "error")
		err := <-done
		want := `waiting for "status/broken": condition failed on the key at mod revision ` + strconv.FormatInt(rev, 10) + `: agent reported an error`
		if err == nil || err.Error() != want {
			t.Fatalf("error %v, want %s", err, want)
		}
		if got == nil || string(got.Value) != "error" {
			t.Fatalf("state %+v, want the error status", got)
		}
	})

	t.Run("etcd behind a revision already seen", func(t *testing.T) {
		rev := mustPut(t, writer, "status/restored", "1")
		_, err := c.WaitFor(ctx, "status/restored", rev+1000, observedAtLeast(1))
		if err == nil || !strings.Contains(err.Error(), "restored from a backup") {
			t.Fatalf("error %v", err)
		}
	})
}
