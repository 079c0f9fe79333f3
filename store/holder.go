package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// holderSample is how often a holder's lease is read while deciding
// whether the holder is alive: a fraction of the shortest TTL etcd grants
// with its default timing (2 s), for the few seconds a contested
// registration waits.
const holderSample = 250 * time.Millisecond

// holderAlive watches the lease that holds a key until its holder shows it
// is alive by renewing the lease (true), or the key leaves that lease
// (false: the lease expired or was revoked, or the key was deleted or
// taken by another lease, which attaching again finds). A key on no lease
// has no holder that could stop holding it: alive. It fails only when ctx
// ends.
//
// What it does not go by is the lease's TTL: etcd gives every lease its
// full TTL again when a new leader takes over, so a dead holder's lease
// looks fresh after a leader change; renewalWatch discounts those.
func holderAlive(ctx context.Context, c *Client, held *HeldError) (bool, error) {
	if held.Lease == 0 {
		return true, nil
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	released := make(chan struct{})
	go func() {
		_, err := c.WaitFor(wctx, held.Key, 0, func(kv *KV) (bool, error) {
			return kv == nil || clientv3.LeaseID(kv.Lease) != held.Lease, nil
		})
		if err == nil {
			close(released)
		}
	}()
	var w renewalWatch
	tick := time.NewTicker(holderSample)
	defer tick.Stop()
	for {
		if w.renewed(wctx, c.etcd, held.Lease) {
			return true, nil
		}
		select {
		case <-released:
			return false, nil
		case <-ctx.Done():
			return false, fmt.Errorf("waiting for the holder of %q (lease %x) to renew its lease or let it go: %w", held.Key, held.Lease, ctx.Err())
		case <-tick.C:
		}
	}
}

// renewalWatch tells a lease someone keeps alive from one left to expire.
// etcd reports a lease's remaining TTL in whole seconds, so a reading
// bounds the lease's expiry to an interval of local time, [sent + TTL,
// received + TTL + 1). The expiry of a lease nobody renews stays put, so
// it lies in every reading's interval; a reading whose interval starts
// after an earlier one ended shows the expiry moved: a keep-alive. Only
// readings of one raft term are compared: a new leader moves every
// lease's expiry (Promote), which proves nothing.
type renewalWatch struct {
	term uint64
	// end is the earliest end of an expiry interval read in term; zero
	// when there is none.
	end time.Time
}

// renewed reads lease once and says whether the readings so far show a
// renewal.
func (w *renewalWatch) renewed(ctx context.Context, etcd *clientv3.Client, lease clientv3.LeaseID) bool {
	sent := time.Now()
	resp, err := etcd.TimeToLive(ctx, lease)
	// A TTL of 0 or less is a lease at or past its expiry (the whole
	// seconds no longer bound it); one above the granted TTL comes from a
	// member that no longer (or not yet) leads, whose leases never expire.
	if err != nil || resp.TTL < 1 || resp.TTL > resp.GrantedTTL {
		return false
	}
	ttl := time.Duration(resp.TTL) * time.Second
	start, end := sent.Add(ttl), time.Now().Add(ttl+time.Second)
	if term := resp.ResponseHeader.GetRaftTerm(); term != w.term || w.end.IsZero() {
		w.term, w.end = term, end
		return false
	}
	if start.After(w.end) {
		return true
	}
	if end.Before(w.end) {
		w.end = end
	}
	return false
}

// holder describes who holds kv.
func (c *Client) holder(ctx context.Context, kv *KV) *HeldError {
	held := &HeldError{Key: kv.Key, Lease: clientv3.LeaseID(kv.Lease), TTL: -1, Value: kv.Value}
	if held.Lease != 0 {
		if ttl, err := c.etcd.TimeToLive(ctx, held.Lease); err == nil {
			held.TTL = ttl.TTL
		}
	}
	return held
}

// Resign ends the registration of key for good, from outside the process
// that held it (a host taken out of service): it revokes own, a lease the
// caller knows no live process keeps alive (a stopped agent's, recorded
// by OnLease), which removes every key bound to it. A key on another
// lease is left alone: Resign fails with a *HeldError when that lease's
// holder shows it is alive by renewing it, and otherwise waits for the
// lease to expire. It says whether it revoked own (false: etcd no longer
// had it, or own is 0).
func (c *Client) Resign(ctx context.Context, key string, own clientv3.LeaseID) (bool, error) {
	kv, err := c.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("resigning %q: %w", key, err)
	}
	if kv != nil && clientv3.LeaseID(kv.Lease) != own {
		held := c.holder(ctx, kv)
		alive, err := holderAlive(ctx, c, held)
		if err != nil {
			return false, fmt.Errorf("resigning %q: %w", key, err)
		}
		if alive {
			return false, held
		}
	}
	if own == 0 {
		return false, nil
	}
	if _, err := c.etcd.Revoke(ctx, own); err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("resigning %q: revoking lease %x: %w", key, own, err)
	}
	return true, nil
}
