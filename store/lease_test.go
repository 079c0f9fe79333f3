package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/tests/v3/framework/integration"
)

func TestRegister(t *testing.T) {
	integration.BeforeTest(t)
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 3})
	defer clus.Terminate(t)
	// The registering agent talks to member 0; the observer to member 1.
	agent, observer := New(clus.Client(0)), New(clus.Client(1))
	ctx := context.Background()
	const key = "hosts/h1/agent"

	var generation atomic.Int64
	value := func() []byte { return fmt.Appendf(nil, "v%d", generation.Add(1)) }
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg, err := agent.Register(rctx, key, value, RegisterOptions{TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	// waitRegistered waits for the key to be back under a lease other than
	// old, and for the registration to report that lease.
	waitRegistered := func(t *testing.T, old clientv3.LeaseID, wantValue string) clientv3.LeaseID {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, eventTimeout)
		defer wcancel()
		kv, err := observer.WaitFor(wctx, key, 0, func(kv *KV) (bool, error) {
			return kv != nil && kv.Lease != int64(old), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if string(kv.Value) != wantValue {
			t.Fatalf("registered value %q, want %q", kv.Value, wantValue)
		}
		lease := clientv3.LeaseID(kv.Lease)
		eventually(t, "registration reports the new lease", func() bool { return reg.LeaseID() == lease })
		select {
		case <-reg.Granted():
		case <-time.After(eventTimeout):
			t.Fatal("Granted() gave no token for the new lease")
		}
		if reg.Err() != nil {
			t.Fatalf("registered, yet Err() = %v", reg.Err())
		}
		ttl, err := observer.Etcd().TimeToLive(ctx, lease)
		if err != nil || ttl.TTL <= 0 {
			t.Fatalf("lease %x: %+v, %v", lease, ttl, err)
		}
		return lease
	}

	var lease clientv3.LeaseID
	t.Run("key is put under a live lease", func(t *testing.T) {
		lease = waitRegistered(t, 0, "v1")
	})

	t.Run("revoked lease: registered again under a new one", func(t *testing.T) {
		if _, err := observer.Etcd().Revoke(ctx, lease); err != nil {
			t.Fatal(err)
		}
		lease = waitRegistered(t, lease, "v2")
	})

	t.Run("lease expired during a partition: registered again after it", func(t *testing.T) {
		clus.WaitLeader(t)
		clus.Members[0].InjectPartition(t, clus.Members[1:]...)
		clus.WaitMembersForLeader(t, clus.Members[1:])
		wctx, wcancel := context.WithTimeout(ctx, eventTimeout)
		defer wcancel()
		if _, err := observer.WaitFor(wctx, key, 0, func(kv *KV) (bool, error) { return kv == nil, nil }); err != nil {
			t.Fatalf("key did not expire while the agent was cut off: %v", err)
		}
		// Whoever acts only as the key's holder waits while it is lost.
		eventually(t, "registration reports the loss", func() bool { return reg.Err() != nil })
		sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
		if err := reg.Wait(sctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait while the registration is lost: %v, want it to block", err)
		}
		scancel()
		clus.Members[0].RecoverPartition(t, clus.Members[1:]...)
		lease = waitRegistered(t, lease, "v3")
		if err := reg.Wait(ctx); err != nil {
			t.Errorf("Wait once registered again: %v", err)
		}
	})

	t.Run("context end leaves the lease to a successor, which resumes it", func(t *testing.T) {
		bound := mustPutLease(t, observer, "members/h1/net", lease)
		cancel()
		select {
		case <-reg.Done():
		case <-time.After(eventTimeout):
			t.Fatal("registration did not end")
		}
		if reg.LeaseID() != 0 || !errors.Is(reg.Err(), context.Canceled) {
			t.Fatalf("after the end: lease %x, err %v", reg.LeaseID(), reg.Err())
		}
		if kv, err := observer.Get(ctx, key); err != nil || kv == nil || clientv3.LeaseID(kv.Lease) != lease {
			t.Fatalf("key after the registration ended: %+v, %v; want it still under lease %x", kv, err, lease)
		}
		next, err := agent.Register(ctx, key, func() []byte { return []byte("next") }, RegisterOptions{TTL: 2 * time.Second, Resume: lease})
		if err != nil {
			t.Fatal(err)
		}
		defer resign(t, agent, key, next)
		kv, err := observer.Get(ctx, key)
		if err != nil || kv == nil || string(kv.Value) != "next" || clientv3.LeaseID(kv.Lease) != lease || next.LeaseID() != lease {
			t.Fatalf("successor registered %+v (%v) under lease %x; want value next under the resumed lease %x", kv, err, next.LeaseID(), lease)
		}
		if kv, err := observer.Get(ctx, bound.Key); err != nil || kv == nil || kv.CreateRevision != bound.CreateRevision {
			t.Errorf("a key bound to the lease went in between: %+v, %v", kv, err)
		}
	})
}

// mustPutLease puts key under lease, as a host agent binds its
// memberships to its registration's lease.
func mustPutLease(t *testing.T, c *Client, key string, lease clientv3.LeaseID) *KV {
	t.Helper()
	if _, err := c.Etcd().Put(context.Background(), key, "bound", clientv3.WithLease(lease)); err != nil {
		t.Fatal(err)
	}
	kv, err := c.Get(context.Background(), key)
	if err != nil || kv == nil {
		t.Fatalf("get %s: %+v, %v", key, kv, err)
	}
	return kv
}

// resign ends reg's registration for good once the test is done with it.
func resign(t *testing.T, c *Client, key string, reg *Registration) {
	t.Helper()
	lease := reg.LeaseID()
	if _, err := c.Resign(context.Background(), key, lease); err != nil {
		t.Errorf("resign lease %x: %v", lease, err)
	}
}

// One key, one live registration: a second is refused naming the holder,
// a deleted key is put back while the lease lives, and a key taken over by
// another lease ends the registration instead of fighting over it.
func TestRegisterIsExclusiveAndSelfHealing(t *testing.T) {
	integration.BeforeTest(t)
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 1})
	defer clus.Terminate(t)
	c := New(clus.Client(0))
	ctx := context.Background()
	const key = "hosts/h1/agent"
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first, err := c.Register(rctx, key, func() []byte { return []byte("first") }, RegisterOptions{TTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("second registration refused, naming the holder", func(t *testing.T) {
		_, err := c.Register(ctx, key, func() []byte { return []byte("second") }, RegisterOptions{TTL: 5 * time.Second})
		var held *HeldError
		if !errors.As(err, &held) {
			t.Fatalf("second Register: %v, want a HeldError", err)
		}
		if held.Lease != first.LeaseID() || string(held.Value) != "first" || held.TTL <= 0 {
			t.Fatalf("HeldError %+v, want lease %x value first and a TTL", held, first.LeaseID())
		}
		kv, err := c.Get(ctx, key)
		if err != nil || kv == nil || string(kv.Value) != "first" || clientv3.LeaseID(kv.Lease) != first.LeaseID() {
			t.Fatalf("key after the refused registration: %+v, %v", kv, err)
		}
	})

	t.Run("deleted key put back under the same lease", func(t *testing.T) {
		for range 3 {
			rev := mustDelete(t, c, key)
			wctx, wcancel := context.WithTimeout(ctx, eventTimeout)
			kv, err := c.WaitFor(wctx, key, rev, func(kv *KV) (bool, error) { return kv != nil, nil })
			wcancel()
			if err != nil {
				t.Fatal(err)
			}
			if clientv3.LeaseID(kv.Lease) != first.LeaseID() || kv.ModRevision <= rev {
				t.Fatalf("key back as %+v, want it under lease %x after revision %d", kv, first.LeaseID(), rev)
			}
		}
	})

	t.Run("key taken by another lease ends the registration", func(t *testing.T) {
		old := first.LeaseID()
		grant, err := c.Etcd().Grant(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Etcd().Put(ctx, key, "usurper", clientv3.WithLease(grant.ID)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-first.Done():
		case <-time.After(eventTimeout):
			t.Fatal("registration still running after its key was taken")
		}
		var held *HeldError
		if !errors.As(first.Err(), &held) || held.Lease != grant.ID {
			t.Fatalf("Err() = %v, want a HeldError naming lease %x", first.Err(), grant.ID)
		}
		if ttl, err := c.Etcd().TimeToLive(ctx, old); err != nil || ttl.TTL != -1 {
			t.Fatalf("the pushed-out lease %x: %+v, %v; want it revoked", old, ttl, err)
		}
		if kv, _ := c.Get(ctx, key); kv == nil || string(kv.Value) != "usurper" {
			t.Fatalf("key after the take-over: %+v", kv)
		}
	})
}

func mustDelete(t *testing.T, c *Client, key string) int64 {
	t.Helper()
	resp, err := c.Etcd().Delete(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}
