package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/tests/v3/framework/integration"
)

// etcd down for longer than the lease's TTL, then back: etcd restores the
// lease (with its TTL refreshed) and the key still on it. The
// registration knows the lease for its own and resumes it, so neither the
// key nor what else is bound to the lease is ever deleted; it does not
// mistake itself for another holder.
func TestRegisterResumesItsLeaseAfterEtcdOutage(t *testing.T) {
	integration.BeforeTest(t)
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 1})
	defer clus.Terminate(t)
	ctx := context.Background()
	// The client uspace's binaries use (Connect): how soon it reconnects
	// once etcd is back is part of what is tested.
	c, err := Connect(ctx, Config{Endpoints: []string{clus.Members[0].GRPCURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const key = "hosts/h1/agent"
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Reconnecting takes a second or two: a TTL of a few seconds leaves
	// the registration time to resume the lease once etcd is back.
	reg, err := c.Register(rctx, key, func() []byte { return []byte("agent") }, RegisterOptions{TTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	lease := reg.LeaseID()
	bound := mustPutLease(t, c, "members/h1/net", lease)
	registered, _ := c.Get(ctx, key)

	clus.Members[0].Stop(t)
	// The client gives the lease up once keep-alives went unanswered for
	// its TTL.
	eventually(t, "registration reports the lost lease", func() bool { return reg.Err() != nil })
	time.Sleep(time.Second)
	if err := clus.Members[0].Restart(t); err != nil {
		t.Fatal(err)
	}
	clus.WaitLeader(t)
	eventually(t, "registered again", func() bool { return reg.LeaseID() != 0 })
	if reg.LeaseID() != lease {
		t.Errorf("registered again under lease %x, want the resumed %x", reg.LeaseID(), lease)
	}
	select {
	case <-reg.Done():
		t.Fatalf("registration ended: %v", reg.Err())
	default:
	}
	for _, want := range []*KV{registered, bound} {
		kv, err := c.Get(ctx, want.Key)
		if err != nil || kv == nil || kv.CreateRevision != want.CreateRevision || clientv3.LeaseID(kv.Lease) != lease {
			t.Errorf("%s after the outage: %+v, %v; want it never deleted and on lease %x", want.Key, kv, err, lease)
		}
	}
	// Kept alive, not merely restored: it outlives its TTL.
	time.Sleep(6 * time.Second)
	if ttl, err := c.Etcd().TimeToLive(ctx, lease); err != nil || ttl.TTL <= 0 || reg.LeaseID() != lease {
		t.Errorf("lease %x after its TTL: %+v, %v (registration on %x)", lease, ttl, err, reg.LeaseID())
	}
}

// moveLeader hands the leadership to another member, which gives every
// lease its full TTL again. It runs beside the code under test, so it
// reports instead of stopping the test.
func moveLeader(clus *integration.Cluster) error {
	lead := -1
	for i, m := range clus.Members {
		if m.Server.Leader() == m.ID() {
			lead = i
		}
	}
	if lead < 0 {
		return errors.New("no leader to move")
	}
	to := (lead + 1) % len(clus.Members)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := clus.Client(lead).MoveLeader(ctx, uint64(clus.Members[to].ID())); err != nil {
		return fmt.Errorf("move leader %d -> %d: %w", lead, to, err)
	}
	return nil
}

// A successor decides whether the holder of its key is alive by whether
// the holder renews its lease, not by the TTL the lease has left: a leader
// change refreshes a dead holder's lease, and the successor must still
// wait it out instead of giving up; a live holder is refused across a
// leader change too.
func TestRegisterJudgesHolderByKeepAlives(t *testing.T) {
	integration.BeforeTest(t)
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 3})
	defer clus.Terminate(t)
	successor, other := New(clus.Client(0)), New(clus.Client(1))
	ctx := context.Background()

	t.Run("dead holder refreshed by leader changes is waited out", func(t *testing.T) {
		const key = "hosts/dead/agent"
		grant, err := other.Etcd().Grant(ctx, 4)
		if err != nil {
			t.Fatal(err)
		}
		// A holder that died at once: its lease is never renewed.
		mustPutLease(t, other, key, grant.ID)
		stop := make(chan struct{})
		moved := make(chan struct{})
		go func() {
			defer close(moved)
			for _, after := range []time.Duration{2 * time.Second, 2500 * time.Millisecond} {
				select {
				case <-stop:
					return
				case <-time.After(after):
				}
				if err := moveLeader(clus); err != nil {
					t.Error(err)
				}
			}
		}()
		start := time.Now()
		reg, err := successor.Register(ctx, key, func() []byte { return []byte("successor") }, RegisterOptions{TTL: 4 * time.Second})
		close(stop)
		<-moved
		if err != nil {
			t.Fatalf("successor refused after %v: %v", time.Since(start), err)
		}
		defer resign(t, successor, key, reg)
		t.Logf("successor registered %v after the dead holder's lease was granted", time.Since(start).Round(time.Millisecond))
		if reg.LeaseID() == grant.ID {
			t.Fatalf("successor took the dead holder's lease %x", grant.ID)
		}
		if ttl, err := other.Etcd().TimeToLive(ctx, grant.ID); err != nil || ttl.TTL != -1 {
			t.Errorf("dead holder's lease after the successor registered: %+v, %v; want it expired", ttl, err)
		}
	})

	t.Run("live holder is refused across a leader change", func(t *testing.T) {
		const key = "hosts/live/agent"
		hctx, hcancel := context.WithCancel(ctx)
		defer hcancel()
		holder, err := other.Register(hctx, key, func() []byte { return []byte("holder") }, RegisterOptions{TTL: 4 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer resign(t, other, key, holder)
		moved := make(chan error, 1)
		go func() {
			time.Sleep(time.Second)
			moved <- moveLeader(clus)
		}()
		defer func() {
			if err := <-moved; err != nil {
				t.Error(err)
			}
		}()
		start := time.Now()
		sctx, scancel := context.WithTimeout(ctx, 2*eventTimeout)
		defer scancel()
		_, err = successor.Register(sctx, key, func() []byte { return []byte("successor") }, RegisterOptions{TTL: 4 * time.Second})
		var held *HeldError
		if !errors.As(err, &held) || held.Lease != holder.LeaseID() {
			t.Fatalf("successor: %v; want a HeldError naming the live holder's lease %x", err, holder.LeaseID())
		}
		t.Logf("live holder recognised after %v", time.Since(start).Round(time.Millisecond))
		if holder.Err() != nil || holder.LeaseID() != held.Lease {
			t.Errorf("holder after the refusal: lease %x, %v", holder.LeaseID(), holder.Err())
		}
	})
}

// Resign revokes a stopped registration's lease, taking every key bound
// to it, and refuses a key a live holder keeps.
func TestResign(t *testing.T) {
	integration.BeforeTest(t)
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 1})
	defer clus.Terminate(t)
	c := New(clus.Client(0))
	ctx := context.Background()
	const key = "hosts/h1/agent"

	rctx, cancel := context.WithCancel(ctx)
	reg, err := c.Register(rctx, key, func() []byte { return []byte("agent") }, RegisterOptions{TTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	lease := reg.LeaseID()
	bound := mustPutLease(t, c, "members/h1/net", lease)

	other := New(clus.Client(0))
	if _, err := other.Resign(ctx, key, 0); !errors.As(err, new(*HeldError)) {
		t.Fatalf("Resign of a live holder's key: %v, want a HeldError", err)
	}
	if kv, _ := c.Get(ctx, key); kv == nil {
		t.Fatal("refused Resign removed the key")
	}

	cancel()
	<-reg.Done()
	revoked, err := c.Resign(ctx, key, lease)
	if err != nil || !revoked {
		t.Fatalf("Resign of the stopped registration: %v, %v", revoked, err)
	}
	for _, k := range []string{key, bound.Key} {
		if kv, err := c.Get(ctx, k); kv != nil || err != nil {
			t.Errorf("%s after Resign: %+v, %v", k, kv, err)
		}
	}
	if revoked, err := c.Resign(ctx, key, lease); revoked || err != nil {
		t.Errorf("Resign again: %v, %v; want nothing to do", revoked, err)
	}
}
