package store

import (
	"context"
	"errors"
	"fmt"
)

// errSatisfied ends the watch under WaitFor once cond is met.
var errSatisfied = errors.New("condition satisfied")

// WaitFor reads key and then watches it until cond accepts it, and returns
// the accepted state (nil if cond accepted absence). cond sees nil while the
// key does not exist. fromRev is a revision the caller has already seen,
// typically that of its own write; etcd answering from an older revision
// means it lost data (restored from a backup), and WaitFor fails rather
// than wait for a status that answers a write etcd no longer has. Pass 0 to
// skip that check.
//
// When cond fails or ctx ends, WaitFor returns the last state it saw along
// with the error, so the caller can report it (say, the status an agent
// wrote before the deadline).
func (c *Client) WaitFor(ctx context.Context, key string, fromRev int64, cond func(kv *KV) (done bool, err error)) (*KV, error) {
	var (
		last      *KV
		seen      bool
		satisfied bool
		condErr   error
	)
	check := func(kv *KV) error {
		last, seen = kv, true
		done, err := cond(kv)
		switch {
		case err != nil:
			condErr = err
			return err
		case done:
			satisfied = true
			return errSatisfied
		}
		return nil
	}
	w := &watcher{c: c, key: key, handler: func(ev Event) error {
		switch ev.Type {
		case Sync:
			if ev.Revision < fromRev {
				return fmt.Errorf("etcd is at revision %d, before revision %d that was already seen: was etcd restored from a backup?", ev.Revision, fromRev)
			}
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
	err := w.run(ctx)
	switch {
	case satisfied:
		return last, nil
	case condErr != nil:
		return last, fmt.Errorf("waiting for %q: condition failed on %s: %w", key, describe(last), condErr)
	case ctx.Err() != nil:
		state := "nothing read yet"
		if seen {
			state = "last seen " + describe(last)
		}
		return last, fmt.Errorf("waiting for %q (from revision %d) to reach the awaited state, %s: %w", key, fromRev, state, ctx.Err())
	}
	return last, fmt.Errorf("waiting for %q: %w", key, err)
}

func describe(kv *KV) string {
	if kv == nil {
		return "the key absent"
	}
	return fmt.Sprintf("the key at mod revision %d", kv.ModRevision)
}
