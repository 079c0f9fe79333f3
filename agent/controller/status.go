package controller

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Status is a status value that carries the time it was written.
type Status interface {
	schema.Object
	Stamp(time.Time)
}

// StatusWriter writes status keys only when their content changes, so a
// reconcile that finds nothing to do costs etcd nothing.
type StatusWriter struct {
	st   *store.Client
	mu   sync.Mutex
	last map[string][]byte // key -> encoding with a zero stamp
}

func NewStatusWriter(st *store.Client) *StatusWriter {
	return &StatusWriter{st: st, last: map[string][]byte{}}
}

// Load reads the statuses under prefix, so a restarted agent neither
// rewrites unchanged statuses nor forgets ones whose intent is gone.
func (w *StatusWriter) Load(ctx context.Context, prefix string) ([]store.KV, error) {
	kvs, _, err := w.st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("load statuses under %s: %w", prefix, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, kv := range kvs {
		o, err := schema.Decode(kv.Value)
		if s, ok := o.(Status); err == nil && ok {
			if b, err := normalized(s); err == nil {
				w.last[kv.Key] = b
				continue
			}
		}
		w.last[kv.Key] = nil // unreadable: rewrite on next Put
	}
	return kvs, nil
}

func normalized(s Status) ([]byte, error) {
	s.Stamp(time.Time{})
	return schema.Encode(s)
}

// Put writes s at key unless the same status is already there.
func (w *StatusWriter) Put(ctx context.Context, key string, s Status) error {
	norm, err := normalized(s)
	if err != nil {
		return fmt.Errorf("write status %s: %w", key, err)
	}
	w.mu.Lock()
	prev, ok := w.last[key]
	w.mu.Unlock()
	if ok && bytes.Equal(prev, norm) {
		return nil
	}
	s.Stamp(time.Now().UTC())
	val, err := schema.Encode(s)
	if err != nil {
		return fmt.Errorf("write status %s: %w", key, err)
	}
	if _, err := w.st.Apply(ctx, store.Op{Key: key, Value: val}); err != nil {
		return fmt.Errorf("write status %s: %w", key, err)
	}
	w.mu.Lock()
	w.last[key] = norm
	w.mu.Unlock()
	return nil
}

// Delete removes the status at key if this writer knows of one.
func (w *StatusWriter) Delete(ctx context.Context, key string) error {
	w.mu.Lock()
	_, ok := w.last[key]
	w.mu.Unlock()
	if !ok {
		return nil
	}
	if _, err := w.st.Apply(ctx, store.Op{Key: key, Delete: true}); err != nil {
		return fmt.Errorf("delete status %s: %w", key, err)
	}
	w.mu.Lock()
	delete(w.last, key)
	w.mu.Unlock()
	return nil
}

// Get returns the last status written or loaded at key.
func (w *StatusWriter) Get(key string) ([]byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, ok := w.last[key]
	return b, ok
}

// Keys lists the status keys this writer knows of.
func (w *StatusWriter) Keys() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := make([]string, 0, len(w.last))
	for k := range w.last {
		keys = append(keys, k)
	}
	return keys
}
