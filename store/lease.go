package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// revokeTimeout bounds a revoke on the way out: a process that is giving
// up should not hang on an unreachable etcd, and the lease expires anyway.
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

// RegisterOptions shape a registration.
type RegisterOptions struct {
	// TTL of a new lease, rounded up to whole seconds (etcd raises it to
	// its minimum). A resumed lease keeps the TTL it was granted with.
	TTL time.Duration
	// Resume is a lease an earlier run of this registration held, as
	// OnLease recorded it: while it lives, the registration carries on
	// under it, so every key bound to it stays. Pass only a lease no live
	// process keeps alive (the caller's lock file proves it): a key bound
	// to it counts as this registration's own.
	Resume clientv3.LeaseID
	// OnLease, if set, runs with each newly granted lease before the key
	// is put under it, so that a restart finds it; an error gives the
	// lease up and counts as a failed attempt.
	OnLease func(clientv3.LeaseID) error
}

// Registration keeps a key alive under a lease for as long as its context
// lives: "this agent is up". Only one registration holds a key at a time.
type Registration struct {
	c     *Client
	key   string
	value func() []byte
	opts  RegisterOptions
	ttl   int64
	done  chan struct{}
	// granted gets a token each time the key is bound to a lease.
	granted chan struct{}

	mu    sync.Mutex
	lease clientv3.LeaseID
	err   error
	// held is closed while the key is registered, and replaced when the
	// registration is lost.
	held chan struct{}
	// own are the leases this registration holds or held (and Resume): a
	// key bound to one of them is its own, not another holder's.
	own map[clientv3.LeaseID]bool
	// last is the lease most recently held (Resume before the first).
	last clientv3.LeaseID
}

// binding is the key bound to a session's lease with value.
type binding struct {
	s     *concurrency.Session
	value []byte
}

// Register puts key with value() under a lease and keeps the lease alive
// (an etcd concurrency.Session: renewed every TTL/3) until ctx ends. Then
// it stops the keep-alives but neither revokes the lease nor deletes the
// key: a successor given the lease (opts.Resume) within its TTL carries on
// under it, and whatever else is bound to the lease never goes away.
// Revoking is Resign's.
//
// A key already bound to a lease of this registration's own (Resume, or
// one it held and lost, as etcd restores leases after an outage) is taken
// over, resuming that lease while it lives. A key under another lease
// belongs to another holder: Register watches that lease until the key
// goes (a holder that crashed leaves its key until its lease expires) or
// the holder shows it is alive by renewing it, and then fails with a
// *HeldError naming the holder. While the lease lives, a deleted key is put
// back at once (an operator's `etcdctl del` does not unregister a live
// agent); a key taken over by another lease ends the registration with a
// *HeldError and revokes its lease. When the lease is lost (keep-alives
// unanswered for its TTL: etcd partitioned or down, the lease revoked by
// an operator) the registration resumes it if etcd still has it, else
// grants a new one and puts the key again, calling value() afresh, until
// ctx ends. The first registration happens before Register returns, so a
// wrong permission, address or a live holder fails here; later ones call
// value from the registration's own goroutines.
func (c *Client) Register(ctx context.Context, key string, value func() []byte, opts RegisterOptions) (*Registration, error) {
	r := &Registration{
		c:     c,
		key:   key,
		value: value,
		opts:  opts,
		ttl:   max(1, int64(math.Ceil(opts.TTL.Seconds()))),
		done:  make(chan struct{}),

		granted: make(chan struct{}, 1),
		held:    make(chan struct{}),
		own:     map[clientv3.LeaseID]bool{},
		last:    opts.Resume,
	}
	if opts.Resume != 0 {
		r.own[opts.Resume] = true
	}
	b, err := r.attach(ctx)
	var held *HeldError
	if errors.As(err, &held) {
		alive, werr := holderAlive(ctx, c, held)
		switch {
		case werr != nil:
			err = fmt.Errorf("registering %q: %w", key, werr)
		case !alive:
			b, err = r.attach(ctx)
		}
	}
	if err != nil {
		return nil, err
	}
	go r.run(ctx, b)
	return r, nil
}

// LeaseID is the lease the key is currently bound to, 0 while it is not
// registered.
func (r *Registration) LeaseID() clientv3.LeaseID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lease
}

// Granted receives a token whenever the key is bound to a lease (the first
// registration included, and a lease resumed after it was lost): whoever
// binds other keys to LeaseID, so that they go when the registration's
// lease goes, checks them again.
func (r *Registration) Granted() <-chan struct{} { return r.granted }

// Err says why the key is not registered right now (nil while it is).
func (r *Registration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Done is closed when the registration has ended: its context ended (the
// lease left to expire unless resumed), or an error that retrying cannot
// cure (Err says which: a permission error, a *HeldError) stopped it.
func (r *Registration) Done() <-chan struct{} { return r.done }

// Wait returns nil once the key is registered (at once while it is), and
// otherwise ctx's error or why the registration ended: whoever must act
// only as the key's holder (write to what the key stands for) waits here
// while the registration is lost.
func (r *Registration) Wait(ctx context.Context) error {
	r.mu.Lock()
	held := r.held
	r.mu.Unlock()
	select {
	case <-held:
		return nil
	case <-r.done:
		return fmt.Errorf("registration of %q ended: %w", r.key, r.Err())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// bound records that the key is registered under lease.
func (r *Registration) bound(lease clientv3.LeaseID) {
	r.mu.Lock()
	r.lease, r.err, r.last = lease, nil, lease
	select {
	case <-r.held:
	default:
		close(r.held)
	}
	r.mu.Unlock()
	select {
	case r.granted <- struct{}{}:
	default: // a token is pending already
	}
}

// lost records why the key is not registered (any more).
func (r *Registration) lost(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lease, r.err = 0, err
	select {
	case <-r.held:
		r.held = make(chan struct{})
	default:
	}
}

func (r *Registration) isOwn(lease clientv3.LeaseID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.own[lease]
}

func (r *Registration) lastLease() clientv3.LeaseID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// attachAttempts bounds how often attach starts over because the key
// changed between reading it and putting it.
const attachAttempts = 5

// attach binds the key to a lease and puts it there: to a live lease of
// this registration's own that the key is on, or else the one it held
// last, so that what is bound to that lease stays; to a new lease
// otherwise. A key on anyone else's lease is a *HeldError.
func (r *Registration) attach(ctx context.Context) (*binding, error) {
	for range attachAttempts {
		kv, err := r.c.Get(ctx, r.key)
		if err != nil {
			return nil, fmt.Errorf("registering %q: %w", r.key, err)
		}
		var rev int64
		lease := r.lastLease()
		if kv != nil {
			if !r.isOwn(clientv3.LeaseID(kv.Lease)) {
				return nil, r.c.holder(ctx, kv)
			}
			rev, lease = kv.ModRevision, clientv3.LeaseID(kv.Lease)
		}
		s, resumed, err := r.session(ctx, lease)
		if err != nil {
			return nil, err
		}
		value := r.value()
		ok, err := r.put(ctx, s.Lease(), rev, value)
		if err == nil && ok {
			r.bound(s.Lease())
			return &binding{s: s, value: value}, nil
		}
		s.Orphan()
		if !resumed {
			// Nothing is bound to it. Had the put landed after all and
			// the revoke failed too, the key is on a lease of this
			// registration's own, which the next attempt takes over.
			r.revoke(ctx, s.Lease())
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("registering %q: it changed under each of %d attempts", r.key, attachAttempts)
}

// session keeps lease alive if etcd still has it (resumed), and otherwise
// grants a new one.
func (r *Registration) session(ctx context.Context, lease clientv3.LeaseID) (s *concurrency.Session, resumed bool, err error) {
	if lease != 0 {
		// Renewing at once both tells whether the lease is still there
		// (its TTL, in whole seconds, may read 0 with most of a second
		// left) and gives it its full TTL for the steps below.
		_, err := r.c.etcd.KeepAliveOnce(ctx, lease)
		switch {
		case err == nil:
			s, err := concurrency.NewSession(r.c.etcd, concurrency.WithLease(lease), concurrency.WithContext(ctx))
			if err != nil {
				return nil, false, fmt.Errorf("registering %q: keeping lease %x alive: %w", r.key, lease, err)
			}
			return s, true, nil
		case !errors.Is(err, rpctypes.ErrLeaseNotFound):
			return nil, false, fmt.Errorf("registering %q: renewing lease %x: %w", r.key, lease, err)
		}
	}
	s, err = concurrency.NewSession(r.c.etcd, concurrency.WithTTL(int(r.ttl)), concurrency.WithContext(ctx))
	if err != nil {
		return nil, false, fmt.Errorf("registering %q: granting a %ds lease: %w", r.key, r.ttl, err)
	}
	r.mu.Lock()
	r.own[s.Lease()] = true
	r.mu.Unlock()
	if r.opts.OnLease != nil {
		if err := r.opts.OnLease(s.Lease()); err != nil {
			s.Orphan()
			r.revoke(ctx, s.Lease())
			return nil, false, fmt.Errorf("registering %q: recording lease %x: %w", r.key, s.Lease(), err)
		}
	}
	return s, false, nil
}

// put puts the key under lease if it is still at mod revision rev (0:
// absent); false when it was not.
func (r *Registration) put(ctx context.Context, lease clientv3.LeaseID, rev int64, value []byte) (bool, error) {
	resp, err := r.c.etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(r.key), "=", rev)).
		Then(clientv3.OpPut(r.key, string(value), clientv3.WithLease(lease))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("registering %q: putting it under lease %x: %w", r.key, lease, err)
	}
	return resp.Succeeded, nil
}

func (r *Registration) run(ctx context.Context, b *binding) {
	defer close(r.done)
	// Retries at most a quarter of the TTL apart: a lease etcd restored
	// after an outage lives one TTL from then on, and is resumed within it.
	bo := NewBackoff(retryInitial, min(retryMax, time.Duration(r.ttl)*time.Second/4))
	err := backoff.Retry(func() error {
		if b == nil {
			var err error
			if b, err = r.attach(ctx); err != nil {
				r.lost(err)
				var held *HeldError
				if errors.As(err, &held) {
					return backoff.Permanent(err)
				}
				return r.c.retryable(err)
			}
			bo.Reset()
		}
		err := r.hold(ctx, b)
		b.s.Orphan()
		lease := b.s.Lease()
		b = nil
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var held *HeldError
		if errors.As(err, &held) {
			// Pushed out by another holder: this registration is over,
			// and so is everything bound to its lease.
			r.revoke(ctx, lease)
			r.lost(err)
			return backoff.Permanent(err)
		}
		err = fmt.Errorf("registration of %q: lease %x lost: %w", r.key, lease, err)
		r.lost(err)
		return r.c.retryable(err)
	}, backoff.WithContext(bo, ctx))
	if ctx.Err() == nil {
		r.lost(err)
		return
	}
	r.lost(fmt.Errorf("registration of %q ended, its lease left to expire unless resumed: %w", r.key, ctx.Err()))
}

// hold keeps the key registered under b's lease until the lease is lost
// (the session ends: expired, revoked, or not renewed before its TTL ran
// out) or the key is taken by another lease (a *HeldError). It watches the
// key meanwhile and puts it back under the lease whenever it is deleted.
func (r *Registration) hold(ctx context.Context, b *binding) error {
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	guard := make(chan error, 1)
	go func() { guard <- r.guard(gctx, b) }()
	select {
	case <-b.s.Done():
		cancel()
		<-guard
		return errors.New("keepalive ended")
	case err := <-guard:
		return err
	}
}

// guard watches the registered key and puts it back, with the value it
// had, under b's lease when it is gone; it returns a *HeldError when
// another lease holds it.
func (r *Registration) guard(ctx context.Context, b *binding) error {
	lease := b.s.Lease()
	check := func(kv *KV) error {
		if kv == nil {
			// Lost to a put in between, the next event says whose.
			_, err := r.put(ctx, lease, 0, b.value)
			return err
		}
		if clientv3.LeaseID(kv.Lease) != lease {
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
