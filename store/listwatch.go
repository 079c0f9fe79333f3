package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// EventType says what an Event carries.
type EventType int

const (
	// Sync carries the complete state of the watched prefix at Revision. It
	// comes first, and again whenever etcd compacted away history the
	// watcher missed: the consumer must then diff the snapshot against what
	// it holds (keys it holds that are not in the snapshot were deleted).
	Sync EventType = iota + 1
	// Put carries a key that was created or changed at Revision.
	Put
	// Delete carries a key that was deleted at Revision.
	Delete
	// Progress says every change up to Revision has been delivered, so an
	// idle consumer knows it is current. etcd sends it to idle watchers at
	// its --experimental-watch-progress-notify-interval (10 minutes by
	// default).
	Progress
)

func (t EventType) String() string {
	switch t {
	case Sync:
		return "sync"
	case Put:
		return "put"
	case Delete:
		return "delete"
	case Progress:
		return "progress"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one step of a list-watch.
type Event struct {
	Type EventType
	// Revision is the snapshot's revision (Sync), the change's revision
	// (Put, Delete; several events of one transaction share it and arrive
	// together) or the revision the watcher is current at (Progress).
	Revision int64
	// KV is the key after a Put; after a Delete only Key and ModRevision
	// (the deletion's revision) are set.
	KV KV
	// PrevKV is the key before a Put or Delete, nil if it did not exist.
	PrevKV *KV
	// Snapshot is every key under the prefix at Revision, sorted (Sync).
	Snapshot []KV
	// More says that more events of this revision (one transaction's)
	// follow at once: a consumer that passes revisions on whole waits for
	// the last.
	More bool
	// Current is the newest revision etcd had when it sent the event (the
	// watch response's header). Current - Revision is how far the watcher
	// trails etcd: zero for a watcher that keeps up, more while it catches
	// up on history.
	Current int64
}

// Handler consumes events in revision order. It runs on the watching
// goroutine, so a slow handler delays later events but loses none. An error
// ends the list-watch with that error.
type Handler func(Event) error

// Reconnect waits: quick enough that a restarted member or a new leader is
// picked up within a second or two, capped so a long outage does not turn
// into a busy loop against etcd.
const (
	retryInitial = 100 * time.Millisecond
	retryMax     = 5 * time.Second
)

// ListWatch lists prefix and then watches it, delivering a Sync followed by
// every change in revision order, each exactly once, until ctx ends or h
// fails. Broken streams, member restarts, partitions (the watch demands a
// leader, so a member cut off from the cluster cannot stall it) and leader
// changes are ridden out by resuming after the last delivered revision;
// when that history has been compacted away it lists again and delivers a
// fresh Sync. It returns h's error, a permission error, an error saying the
// client was closed, or (wrapped) ctx's error.
func (c *Client) ListWatch(ctx context.Context, prefix string, h Handler) error {
	w := &watcher{c: c, key: prefix, end: clientv3.GetPrefixRangeEnd(prefix), handler: h}
	return w.run(ctx)
}

type watcher struct {
	c   *Client
	key string
	// end is the range end; "" watches key alone.
	end     string
	handler Handler
	// rev is the revision up to which every change has been delivered; 0
	// when a (re)list is due.
	rev int64
}

var errCompacted = errors.New("history compacted")

func (w *watcher) run(ctx context.Context) error {
	b := NewBackoff(retryInitial, retryMax)
	err := backoff.Retry(func() error { return w.session(ctx, b) }, backoff.WithContext(b, ctx))
	if ctx.Err() != nil {
		return fmt.Errorf("watching %q stopped after revision %d: %w", w.key, w.rev, ctx.Err())
	}
	return err
}

// session lists when due, then watches until the watch breaks. Errors that
// retrying cannot fix come back as backoff.Permanent.
func (w *watcher) session(ctx context.Context, b backoff.BackOff) error {
	for {
		if w.rev == 0 {
			kvs, rev, err := w.c.listRange(ctx, w.key, w.end)
			if err != nil {
				return w.c.retryable(err)
			}
			if err := w.deliver(Event{Type: Sync, Revision: rev, Snapshot: kvs, Current: rev}); err != nil {
				return backoff.Permanent(err)
			}
			w.rev = rev
		}
		err := w.watch(ctx, b)
		if !errors.Is(err, errCompacted) {
			return err
		}
		w.rev = 0
	}
}

func (w *watcher) watch(ctx context.Context, b backoff.BackOff) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithRev(w.rev + 1), clientv3.WithPrevKV(), clientv3.WithProgressNotify()}
	if w.end != "" {
		opts = append(opts, clientv3.WithRange(w.end))
	}
	for resp := range w.c.etcd.Watch(wctx, w.key, opts...) {
		if resp.CompactRevision != 0 {
			return fmt.Errorf("watching %q from revision %d (compacted up to %d): %w", w.key, w.rev+1, resp.CompactRevision, errCompacted)
		}
		if err := resp.Err(); err != nil {
			return w.c.retryable(fmt.Errorf("watching %q from revision %d: %w", w.key, w.rev+1, err))
		}
		// Something arrived, so the connection is healthy again: the next
		// break starts with a short wait.
		b.Reset()
		if resp.IsProgressNotify() {
			if resp.Header.Revision > w.rev {
				w.rev = resp.Header.Revision
			}
			if err := w.deliver(Event{Type: Progress, Revision: w.rev, Current: resp.Header.Revision}); err != nil {
				return backoff.Permanent(err)
			}
			continue
		}
		for i, ev := range resp.Events {
			out := Event{Type: Put, Revision: ev.Kv.ModRevision, KV: fromPB(ev.Kv), Current: resp.Header.Revision,
				More: i+1 < len(resp.Events) && resp.Events[i+1].Kv.ModRevision == ev.Kv.ModRevision}
			if ev.Type == clientv3.EventTypeDelete {
				out.Type = Delete
			}
			if ev.PrevKv != nil {
				prev := fromPB(ev.PrevKv)
				out.PrevKV = &prev
			}
			if err := w.deliver(out); err != nil {
				return backoff.Permanent(err)
			}
			w.rev = ev.Kv.ModRevision
		}
	}
	return w.c.retryable(fmt.Errorf("watching %q from revision %d: watch closed", w.key, w.rev+1))
}

func (w *watcher) deliver(ev Event) error {
	if err := w.handler(ev); err != nil {
		return fmt.Errorf("handling %s of %q at revision %d: %w", ev.Type, w.key, ev.Revision, err)
	}
	return nil
}
