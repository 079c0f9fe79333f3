package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// ConflictAttempts bounds how often RetryOnConflict (and so Update and
// UpdateUnderPrefix) tries: each retry follows a write by someone else, so
// this is only reached under heavy churn on one key or prefix.
const ConflictAttempts = 50

// The pauses between attempts: short, since the writer that won is done
// already, growing and randomised (±50%) so contenders do not collide again.
const (
	conflictRetryInitial = 5 * time.Millisecond
	conflictRetryMax     = 100 * time.Millisecond
)

// RetryOnConflict runs a guarded read-modify-write, attempt, until it
// returns anything but a conflict (an error wrapping ErrConflict): an
// attempt that lost its guard to another writer starts over from a fresh
// read, after a pause. It returns attempt's last result; after
// ConflictAttempts conflicts in a row, the last conflict, wrapped (it still
// wraps ErrConflict); when ctx ends during a pause, ctx's error.
func RetryOnConflict(ctx context.Context, attempt func() error) error {
	n := 0
	b := backoff.WithContext(backoff.WithMaxRetries(NewBackoff(conflictRetryInitial, conflictRetryMax), ConflictAttempts-1), ctx)
	err := backoff.Retry(func() error {
		n++
		err := attempt()
		if err != nil && !errors.Is(err, ErrConflict) {
			return backoff.Permanent(err)
		}
		return err
	}, b)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("still conflicting after %d attempts: %w", n, err)
	}
	return err
}

// Update is a guarded read-modify-write of one key: it reads key, calls fn
// with its state (nil: absent) and writes what fn returns, guarded on the
// mod revision it read; when another writer got there first it starts over
// (RetryOnConflict). fn returns the new value: old's value (the same
// bytes) writes nothing, nil deletes the key (nothing when it is absent).
// An error from fn ends the update with that error, unless it wraps
// ErrConflict (fn saw a conflict of its own), which starts it over too. Update returns the
// revision of its write, or, when it wrote nothing, the key's mod revision
// (0: absent).
func (c *Client) Update(ctx context.Context, key string, fn func(old *KV) (new []byte, err error)) (int64, error) {
	var rev int64
	err := RetryOnConflict(ctx, func() error {
		old, err := c.Get(ctx, key)
		if err != nil {
			return err
		}
		rev, err = c.write(ctx, nil, key, old, fn)
		return err
	})
	return rev, err
}

// UpdateUnderPrefix is Update for a key whose new value depends on every
// key under prefix (the lowest number none of them holds, say): it lists
// prefix, key included, calls fn with the list (sorted by key) and key's
// own state in it (nil: absent), and writes key guarded on its mod
// revision and on no key under prefix having been created or changed since
// the list (a PrefixGuard), starting over when either guard fails. key must
// lie under prefix. fn's results mean what they mean for Update.
func (c *Client) UpdateUnderPrefix(ctx context.Context, prefix, key string, fn func(list []KV, old *KV) (new []byte, err error)) (int64, error) {
	if !strings.HasPrefix(key, prefix) {
		return 0, fmt.Errorf("update of %q under prefix %q: the key is not under the prefix", key, prefix)
	}
	var rev int64
	err := RetryOnConflict(ctx, func() error {
		list, listRev, err := c.List(ctx, prefix)
		if err != nil {
			return err
		}
		var old *KV
		for i := range list {
			if list[i].Key == key {
				old = &list[i]
			}
		}
		pg := &PrefixGuard{Prefix: prefix, Since: listRev}
		rev, err = c.write(ctx, pg, key, old, func(old *KV) ([]byte, error) { return fn(list, old) })
		return err
	})
	return rev, err
}

// write is one attempt of an update: fn's answer, written guarded on old.
func (c *Client) write(ctx context.Context, pg *PrefixGuard, key string, old *KV, fn func(old *KV) ([]byte, error)) (int64, error) {
	var modRev int64
	if old != nil {
		modRev = old.ModRevision
	}
	val, err := fn(old)
	switch {
	case err != nil:
		return modRev, err
	case old != nil && val != nil && bytes.Equal(val, old.Value), old == nil && val == nil:
		return modRev, nil
	}
	op := Op{Key: key, Value: val, Delete: val == nil, Guard: ModRevision(modRev)}
	return c.apply(ctx, pg, []Op{op})
}
