package harness

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// WaitTimeout bounds every wait for an agent; agents converge in
// milliseconds, so hitting it means something is broken.
const WaitTimeout = 30 * time.Second

// Put writes intents in one transaction and returns its revision.
func (e *Etcd) Put(t testing.TB, objs map[string]schema.Object) int64 {
	t.Helper()
	var ops []store.Op
	for key, o := range objs {
		b, err := schema.Encode(o)
		if err != nil {
			t.Fatalf("encode %s: %v", key, err)
		}
		ops = append(ops, store.Op{Key: key, Value: b})
	}
	rev, err := e.Store.Apply(context.Background(), ops...)
	if err != nil {
		t.Fatalf("put intents: %v", err)
	}
	return rev
}

// Delete removes keys in one transaction and returns its revision.
func (e *Etcd) Delete(t testing.TB, keys ...string) int64 {
	t.Helper()
	var ops []store.Op
	for _, k := range keys {
		ops = append(ops, store.Op{Key: k, Delete: true})
	}
	rev, err := e.Store.Apply(context.Background(), ops...)
	if err != nil {
		t.Fatalf("delete intents: %v", err)
	}
	return rev
}

// WaitStatus watches statusKey until its value, decoded as T, has
// observedRevision >= rev and satisfies ok.
func WaitStatus[T any, PT interface {
	*T
	schema.Object
}](t testing.TB, e *Etcd, statusKey string, rev int64, ok func(*T) bool) *T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	var got *T
	last, err := e.Store.WaitFor(ctx, statusKey, 0, func(kv *store.KV) (bool, error) {
		if kv == nil {
			return false, nil
		}
		v, err := schema.DecodeAs[T, PT](kv.Value)
		if err != nil {
			return false, err
		}
		var obs int64
		switch s := any(v).(type) {
		case *schema.InterfaceStatus:
			obs = s.ObservedRevision
		case *schema.VolumeStatus:
			obs = s.ObservedRevision
		default:
			return false, errors.New("not a status kind")
		}
		got = v
		return obs >= rev && ok(v), nil
	})
	if err != nil {
		var seen string
		if last != nil {
			seen = string(last.Value)
		}
		t.Fatalf("wait for %s at revision %d: %v (last seen: %s)", statusKey, rev, err, seen)
	}
	return got
}

// Ready accepts a status reporting success.
func Ready[T schema.InterfaceStatus | schema.VolumeStatus](s *T) bool {
	switch v := any(s).(type) {
	case *schema.InterfaceStatus:
		return v.Ready
	case *schema.VolumeStatus:
		return v.Ready
	}
	return false
}

// WaitGone watches key until it does not exist.
func (e *Etcd) WaitGone(t testing.TB, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if _, err := e.Store.WaitFor(ctx, key, 0, func(kv *store.KV) (bool, error) { return kv == nil, nil }); err != nil {
		t.Fatalf("wait for %s to go: %v", key, err)
	}
}
