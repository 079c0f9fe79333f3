package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// revokeTimeout bounds the goodbye revoke: a process that is shutting down
// should not hang on an unreachable etcd, and the lease expires anyway.
const revokeTimeout = 2 * time.Second

// HeldError says the key is registered under someone else's live lease:
// another process claims what this one wanted to register.
type HeldError struct {
	Key string
	// Lease is the holder's lease, TTL the seconds it has left unless the
	// holder keeps it alive (-1 when etcd could not say).
	Lease clientv3.LeaseID
	TTL   int64
	// Value is what the holder registered.
	Value []byte
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%q is already registered under lease %x (%ds left unless kept alive): %s", e.Key, e.Lease, e.TTL, e.Value)
}

// Registration keeps a key alive under a lease for as long as its context
// lives: "this agent is up". Only one registration holds a key at a time.
type Registration struct {
	c     *Client
	key   string
	value func() []byte
	ttl   int64
	done  chan struct{}
	// granted gets a token each time the key is bound to a new lease.
	granted chan struct{}

	mu    sync.Mutex
	lease clientv3.LeaseID
	err   error
}

// Register puts key with value() under a lease of ttl (rounded up to whole
// seconds; etcd raises it to its minimum) and keeps the lease alive (the
// etcd client renews it every ttl/3).
//
// The put is create-only: while another lease holds key, Register waits
// as long as that lease has left (a holder that crashed leaves its key
// until then) and then fails with a *HeldError naming the holder, which
// kept its lease alive and is therefore live. While the lease lives, a deleted key
// is put back at once (an operator's `etcdctl del` does not unregister a
// live agent); a key taken over by another lease ends the registration with
// a *HeldError. When the lease is lost (expired during a partition, revoked
// by an operator) it grants a new one and puts the key again, calling
// value() afresh, until ctx ends; then it revokes the lease so the key
// disappears at once instead of after ttl. The first registration happens
// before Register returns, so a wrong permission, address or a live holder
// fails here; later ones call value from the registration's own goroutines.
func (c *Client) Register(ctx context.Context, key string, value func() []byte, ttl time.Duration) (*Registration, error) {
	r := &Registration{
		c:     c,
		key:   key,
		value: value,
		ttl:   max(1, int64(math.Ceil(ttl.Seconds()))),
		done:  make(chan struct{}),

		granted: make(chan struct{}, 1),
	}
	k, err := r.register(ctx, 0)
	var held *HeldError
	if errors.As(err, &held) && r.awaitRelease(ctx, held) {
		k, err = r.register(ctx, 0)
	}
	if err != nil {
		return nil, err
	}
	go r.run(ctx, k)
	return r, nil
}

// releaseMargin is added to a holder's remaining TTL when waiting for it to
// expire: etcd reports TTLs in whole seconds and expires leases on the
// leader's clock.
const releaseMargin = 2 * time.Second

// awaitRelease waits for a held key to go, for as long as the holder's
// lease has left. A holder that died without revoking (SIGKILL, a crash,
// a power cut) leaves its key until its lease expires, and its successor
// must not be refused for that; a holder that is alive keeps renewing its
// lease, so its key is still there after that time. What tells them apart
// is the lease itself, not the clock: past its TTL, a renewed lease has
// time left, a dead holder's has none (etcd only revokes it late, as a
// loaded host was seen to do by seconds), and then the wait goes on.
func (r *Registration) awaitRelease(ctx context.Context, held *HeldError) bool {
	if held.TTL < 0 {
		return false
	}
	wait := time.Duration(held.TTL)*time.Second + releaseMargin
	for {
		wctx, cancel := context.WithTimeout(ctx, wait)
		_, err := r.c.WaitFor(wctx, r.key, 0, func(kv *KV) (bool, error) { return kv == nil, nil })
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if kv, err := r.c.Get(ctx, r.key); err == nil && (kv == nil || kv.Lease != int64(held.Lease)) {
			return true // gone, or someone else's now: registering says which
		}
		ttl, err := r.c.etcd.TimeToLive(ctx, held.Lease)
		if err == nil && ttl.TTL > 0 {
			return false // renewed: its holder is alive
		}
		wait = releaseMargin
	}
}

// LeaseID is the lease the key is currently bound to, 0 while it is not
// registered.
func (r *Registration) LeaseID() clientv3.LeaseID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lease
}

// Granted receives a token whenever the key is bound to a new lease (the
// first registration included): whoever binds other keys to LeaseID, so
// that they go when the registration's lease goes, binds them again.
func (r *Registration) Granted() <-chan struct{} { return r.granted }

// Err says why the key is not registered right now (nil while it is).
func (r *Registration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Done is closed when the registration has ended: its context ended and the
// lease was revoked, or an error that retrying cannot cure (Err says which:
// a permission error, a *HeldError) stopped it.
func (r *Registration) Done() <-chan struct{} { return r.done }

func (r *Registration) set(lease clientv3.LeaseID, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lease, r.err = lease, err
}

// register grants a lease and puts the key under it unless it exists. A key
// still bound to prev, a lease this registration held and gave up on,
// is freed (prev revoked) and the attempt retried.
// kept is a lease being kept alive: alive closes when it is lost, stop
// ends the keepalives.
type kept struct {
	lease clientv3.LeaseID
	value []byte // what was put under it
	alive <-chan *clientv3.LeaseKeepAliveResponse
	stop  context.CancelFunc
}

func (r *Registration) register(ctx context.Context, prev clientv3.LeaseID) (*kept, error) {
	grant, err := r.c.etcd.Grant(ctx, r.ttl)
	if err != nil {
		return nil, fmt.Errorf("registering %q: granting a %ds lease: %w", r.key, r.ttl, err)
	}
	value := r.value()
	if err := r.putIfAbsent(ctx, grant.ID, value); err != nil {
		r.revoke(ctx, grant.ID)
		var held *HeldError
		if errors.As(err, &held) && held.Lease == prev && prev != 0 {
			r.revoke(ctx, prev)
			return nil, fmt.Errorf("registering %q: freed it from lease %x, which this registration had lost: %w", r.key, prev, err)
		}
		return nil, err
	}
	kctx, stop := context.WithCancel(ctx)
	alive, err := r.c.etcd.KeepAlive(kctx, grant.ID)
	if err != nil {
		stop()
		// The put landed; without keepalives the key would linger for ttl
		// claiming a registration that is gone.
		r.revoke(ctx, grant.ID)
		return nil, fmt.Errorf("registering %q: keeping lease %x alive: %w", r.key, grant.ID, err)
	}
	r.set(grant.ID, nil)
	select {
	case r.granted <- struct{}{}:
	default: // a token is pending already
	}
	return &kept{lease: grant.ID, value: value, alive: alive, stop: stop}, nil
}

// putIfAbsent puts the key under lease if no key exists, and otherwise
// returns a *HeldError unless lease already holds it.
func (r *Registration) putIfAbsent(ctx context.Context, lease clientv3.LeaseID, value []byte) error {
	resp, err := r.c.etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(r.key), "=", 0)).
		Then(clientv3.OpPut(r.key, string(value), clientv3.WithLease(lease))).
		Else(clientv3.OpGet(r.key)).
		Commit()
	if err != nil {
		return fmt.Errorf("registering %q: putting it under lease %x: %w", r.key, lease, err)
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		// Deleted between the compare and the get of one transaction
		// cannot happen; an empty answer means the key is free again.
		return fmt.Errorf("registering %q: key vanished while checking it", r.key)
	}
	holder := clientv3.LeaseID(kvs[0].Lease)
	if holder == lease {
		return nil
	}
	held := &HeldError{Key: r.key, Lease: holder, TTL: -1, Value: kvs[0].Value}
	if holder != 0 {
		if ttl, err := r.c.etcd.TimeToLive(ctx, holder); err == nil {
			held.TTL = ttl.TTL
		}
	}
	return held
}

func (r *Registration) run(ctx context.Context, k *kept) {
	defer close(r.done)
	b := NewBackoff(retryInitial, retryMax)
	var lost clientv3.LeaseID
	err := backoff.Retry(func() error {
		if k == nil {
			var err error
			if k, err = r.register(ctx, lost); err != nil {
				r.set(0, err)
				var held *HeldError
				if errors.As(err, &held) {
					return backoff.Permanent(err)
				}
				return r.c.classify(err)
			}
			b.Reset()
		}
		err := r.hold(ctx, k)
		k.stop()
		lost, k = k.lease, nil
		if ctx.Err() != nil {
			// Ours to revoke below.
			return ctx.Err()
		}
		// Whether lost or pushed out, the lease is of no more use: revoked,
		// it cannot outlive this registration holding nothing.
		r.revoke(ctx, lost)
		var held *HeldError
		if errors.As(err, &held) {
			r.set(0, err)
			return backoff.Permanent(err)
		}
		err = fmt.Errorf("registration of %q: lease %x lost: %w", r.key, lost, err)
		r.set(0, err)
		return r.c.classify(err)
	}, backoff.WithContext(b, ctx))
	if ctx.Err() == nil {
		r.set(0, err)
		return
	}
	r.revoke(ctx, r.LeaseID())
	r.set(0, fmt.Errorf("registration of %q ended: %w", r.key, ctx.Err()))
}

// hold keeps the key registered under lease until the lease is lost (the
// keepalive channel closes: expired, revoked, or not renewed before its
// TTL ran out) or the key is taken by another lease (a *HeldError). It
// watches the key meanwhile and puts it back under lease whenever it is
// deleted.
func (r *Registration) hold(ctx context.Context, k *kept) error {
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	guard := make(chan error, 1)
	go func() { guard <- r.guard(gctx, k) }()
	for {
		select {
		case _, ok := <-k.alive:
			if !ok {
				cancel()
				<-guard
				return errors.New("keepalive ended")
			}
		case err := <-guard:
			return err
		}
	}
}

// guard watches the registered key and puts it back, with the value it
// had, under k's lease when it is gone; it returns a *HeldError when
// another lease holds it.
func (r *Registration) guard(ctx context.Context, k *kept) error {
	check := func(kv *KV) error {
		if kv == nil {
			return r.putIfAbsent(ctx, k.lease, k.value)
		}
		if clientv3.LeaseID(kv.Lease) != k.lease {
			return &HeldError{Key: r.key, Lease: clientv3.LeaseID(kv.Lease), TTL: -1, Value: kv.Value}
		}
		return nil
	}
	w := &watcher{c: r.c, key: r.key, handler: func(ev Event) error {
		switch ev.Type {
		case Sync:
			if len(ev.Snapshot) == 0 {
				return check(nil)
			}
			return check(&ev.Snapshot[0])
		case Put:
			return check(&ev.KV)
		case Delete:
			return check(nil)
		}
		return nil
	}}
	return w.run(ctx)
}

// revoke is best effort: the lease expires by itself if etcd cannot be told.
func (r *Registration) revoke(ctx context.Context, lease clientv3.LeaseID) {
	if lease == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	_, _ = r.c.etcd.Revoke(rctx, lease)
}
