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
	reg, err := agent.Register(rctx, key, value, 2*time.Second)
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
		clus.Members[0].RecoverPartition(t, clus.Members[1:]...)
		lease = waitRegistered(t, lease, "v3")
	})

	t.Run("context end revokes the lease at once", func(t *testing.T) {
		cancel()
		select {
		case <-reg.Done():
		case <-time.After(eventTimeout):
			t.Fatal("registration did not end")
		}
		if kv, err := observer.Get(ctx, key); kv != nil || err != nil {
			t.Fatalf("key after the registration ended: %+v, %v", kv, err)
		}
		ttl, err := observer.Etcd().TimeToLive(ctx, lease)
		if err != nil || ttl.TTL != -1 {
			t.Fatalf("lease %x after the registration ended: %+v, %v; want it revoked", lease, ttl, err)
		}
		if reg.LeaseID() != 0 || !errors.Is(reg.Err(), context.Canceled) {
			t.Fatalf("after the end: lease %x, err %v", reg.LeaseID(), reg.Err())
		}
	})
}
