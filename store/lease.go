package store

import (
	"context"
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

// Registration keeps a key alive under a lease for as long as its context
// lives: "this agent is up".
type Registration struct {
	c     *Client
	key   string
	value func() []byte
	ttl   int64
	done  chan struct{}

	mu    sync.Mutex
	lease clientv3.LeaseID
	err   error
}

// Register puts key with value() under a lease of ttl (rounded up to whole
// seconds; etcd raises it to its minimum) and keeps the lease alive. When
// the lease is lost (expired during a partition, revoked by an operator) it
// grants a new one and puts the key again, calling value() afresh, until ctx
// ends; then it revokes the lease so the key disappears at once instead of
// after ttl. The first registration happens before Register returns, so a
// wrong permission or address fails here; later ones call value from the
// registration's own goroutine.
func (c *Client) Register(ctx context.Context, key string, value func() []byte, ttl time.Duration) (*Registration, error) {
	r := &Registration{
		c:     c,
		key:   key,
		value: value,
		ttl:   max(1, int64(math.Ceil(ttl.Seconds()))),
		done:  make(chan struct{}),
	}
	alive, err := r.register(ctx)
	if err != nil {
		return nil, err
	}
	go r.run(ctx, alive)
	return r, nil
}

// LeaseID is the lease the key is currently bound to, 0 while it is not
// registered.
func (r *Registration) LeaseID() clientv3.LeaseID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lease
}

// Err says why the key is not registered right now (nil while it is).
func (r *Registration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Done is closed when the registration has ended: its context ended and the
// lease was revoked, or an error that retrying cannot cure (Err says which)
// stopped it.
func (r *Registration) Done() <-chan struct{} { return r.done }

func (r *Registration) set(lease clientv3.LeaseID, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lease, r.err = lease, err
}

func (r *Registration) register(ctx context.Context) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	grant, err := r.c.etcd.Grant(ctx, r.ttl)
	if err != nil {
		return nil, fmt.Errorf("registering %q: granting a %ds lease: %w", r.key, r.ttl, err)
	}
	if _, err := r.c.etcd.Put(ctx, r.key, string(r.value()), clientv3.WithLease(grant.ID)); err != nil {
		r.revoke(ctx, grant.ID)
		return nil, fmt.Errorf("registering %q: putting it under lease %x: %w", r.key, grant.ID, err)
	}
	alive, err := r.c.etcd.KeepAlive(ctx, grant.ID)
	if err != nil {
		// The put may have landed; without keepalives the key would
		// linger for ttl claiming a registration that is gone.
		r.revoke(ctx, grant.ID)
		return nil, fmt.Errorf("registering %q: keeping lease %x alive: %w", r.key, grant.ID, err)
	}
	r.set(grant.ID, nil)
	return alive, nil
}

func (r *Registration) run(ctx context.Context, alive <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(r.done)
	b := newBackoff()
	err := backoff.Retry(func() error {
		if alive == nil {
			var err error
			if alive, err = r.register(ctx); err != nil {
				r.set(0, err)
				return r.c.classify(err)
			}
			b.Reset()
		}
		lease := r.LeaseID()
		// The keepalive channel closes when the lease is gone (expired,
		// revoked) or could not be renewed before its TTL ran out.
		for range alive {
		}
		alive = nil
		if ctx.Err() != nil {
			// Ours to revoke below.
			return ctx.Err()
		}
		lost := fmt.Errorf("registration of %q: lease %x lost", r.key, lease)
		r.set(0, lost)
		return lost
	}, backoff.WithContext(b, ctx))
	if ctx.Err() == nil {
		r.set(0, err)
		return
	}
	r.revoke(ctx, r.LeaseID())
	r.set(0, fmt.Errorf("registration of %q ended: %w", r.key, ctx.Err()))
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
