package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
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
//
// Writes are asynchronous and batched: Put and Delete record the change and
// return; one flusher goroutine at a time writes what is pending in
// transactions of up to store.MaxOps keys, starting as soon as there is
// something to write. A lone status goes out at once; while a transaction
// is in flight, further changes gather for the next one, so a burst (the
// initial sync) costs one fsync per batch instead of one per key. A failed
// transaction is retried with backoff until it succeeds or a newer change
// to the same key replaces it, except when etcd refuses this identity
// (permission denied, authentication failed): retrying cannot cure that,
// so the writer stops, Put and Delete fail with that error from then on,
// and Failed is closed so the agent can exit and say why.
type StatusWriter struct {
	st   *store.Client
	mu   sync.Mutex
	last map[string][]byte // key -> encoding with a zero stamp (written or pending)
	// pending holds the changes not written yet, at most one per key, in
	// the order they were first made.
	pending  map[string]store.Op
	order    []string
	flushing bool
	inflight int   // changes in the transaction being written
	failures int   // failed transactions so far
	lastErr  error // of the last failed transaction
	failing  bool  // the last transaction failed
	terminal error // etcd refused this identity: nothing more is written
	failed   chan struct{}
	idle     *sync.Cond // signalled when nothing is pending or in flight, and on failures
}

func NewStatusWriter(st *store.Client) *StatusWriter {
	w := &StatusWriter{st: st, last: map[string][]byte{}, pending: map[string]store.Op{}, failed: make(chan struct{})}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// Failed is closed when a write failed for good (Err says why).
func (w *StatusWriter) Failed() <-chan struct{} { return w.failed }

// Err is why statuses are not being written right now: the terminal error,
// or the error of the last transaction while it is being retried; nil
// while writes succeed.
func (w *StatusWriter) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.terminal != nil {
		return w.terminal
	}
	if w.failing {
		return w.lastErr
	}
	return nil
}

// Failures counts the status transactions that failed so far.
func (w *StatusWriter) Failures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failures
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

// Put writes s at key unless the same status is already there (or on its
// way there).
func (w *StatusWriter) Put(ctx context.Context, key string, s Status) error {
	norm, err := normalized(s)
	if err != nil {
		return fmt.Errorf("write status %s: %w", key, err)
	}
	w.mu.Lock()
	prev, ok := w.last[key]
	terminal := w.terminal
	w.mu.Unlock()
	if terminal != nil {
		return fmt.Errorf("write status %s: %w", key, terminal)
	}
	if ok && bytes.Equal(prev, norm) {
		return nil
	}
	s.Stamp(time.Now().UTC())
	val, err := schema.Encode(s)
	if err != nil {
		return fmt.Errorf("write status %s: %w", key, err)
	}
	w.mu.Lock()
	w.last[key] = norm
	w.enqueueLocked(ctx, store.Op{Key: key, Value: val})
	w.mu.Unlock()
	return nil
}

// Delete removes the status at key if this writer knows of one.
func (w *StatusWriter) Delete(ctx context.Context, key string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.last[key]; !ok {
		return nil
	}
	return w.deleteLocked(ctx, key)
}

// DeleteAny removes the status at key whoever wrote it: the statuses of a
// container agent, which outlive the container when it stops before its
// interfaces are deleted.
func (w *StatusWriter) DeleteAny(ctx context.Context, key string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.deleteLocked(ctx, key)
}

func (w *StatusWriter) deleteLocked(ctx context.Context, key string) error {
	if w.terminal != nil {
		return fmt.Errorf("delete status %s: %w", key, w.terminal)
	}
	delete(w.last, key)
	w.enqueueLocked(ctx, store.Op{Key: key, Delete: true})
	return nil
}

// enqueueLocked records op as the pending change of its key and makes sure
// a flusher runs. The flusher lives on ctx: should it end with changes
// still pending, the next Put or Delete starts another.
func (w *StatusWriter) enqueueLocked(ctx context.Context, op store.Op) {
	if _, ok := w.pending[op.Key]; !ok {
		w.order = append(w.order, op.Key)
	}
	w.pending[op.Key] = op
	if !w.flushing {
		w.flushing = true
		go w.flush(ctx)
	}
}

// Flush waits until every change made so far is written. It returns early
// with the error of a write that fails meanwhile (the flusher keeps
// retrying it) or when ctx ends. Changes still pending when the context of
// the Put or Delete that started the flusher ends are not written; the
// statuses they were for are rewritten by the next reconcile of their keys.
func (w *StatusWriter) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		w.mu.Lock()
		w.idle.Broadcast()
		w.mu.Unlock()
	})
	defer stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	failures := w.failures
	for {
		if w.terminal != nil {
			return fmt.Errorf("write statuses: %w", w.terminal)
		}
		if len(w.pending) == 0 && !w.flushing {
			return nil
		}
		if w.failures != failures {
			return fmt.Errorf("write statuses: %w", w.lastErr)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !w.flushing {
			// The flusher ended with its context; pending changes wait
			// for the next Put or Delete.
			return errors.New("write statuses: flusher stopped with changes pending")
		}
		w.idle.Wait()
	}
}

// flushBackoff bounds the wait between retries of a failed write.
const (
	flushBaseDelay = 50 * time.Millisecond
	flushMaxDelay  = 5 * time.Second
)

func (w *StatusWriter) flush(ctx context.Context) {
	delay := flushBaseDelay
	for {
		w.mu.Lock()
		if len(w.pending) == 0 || ctx.Err() != nil {
			w.flushing = false
			w.idle.Broadcast()
			w.mu.Unlock()
			return
		}
		n := min(len(w.order), store.MaxOps)
		batch := make([]store.Op, 0, n)
		for _, k := range w.order[:n] {
			batch = append(batch, w.pending[k])
			delete(w.pending, k)
		}
		w.order = append(w.order[:0:0], w.order[n:]...)
		w.inflight = n
		w.mu.Unlock()

		_, err := w.st.Apply(ctx, batch...)
		w.mu.Lock()
		w.inflight = 0
		if err == nil {
			w.failing = false
			w.mu.Unlock()
			delay = flushBaseDelay
			continue
		}
		w.failures++
		w.lastErr, w.failing = err, true
		if store.IsDenied(err) {
			// Nothing this writer could write again will be accepted.
			w.terminal = fmt.Errorf("etcd refuses status writes: %w", err)
			w.flushing = false
			close(w.failed)
			w.idle.Broadcast()
			w.mu.Unlock()
			slog.Error("status write refused by etcd; giving up", "keys", len(batch), "err", err)
			return
		}
		// Put the batch back in front, except where a newer change took
		// its place meanwhile, and retry after a pause.
		var requeue []string
		for _, op := range batch {
			if _, newer := w.pending[op.Key]; !newer {
				w.pending[op.Key] = op
				requeue = append(requeue, op.Key)
			}
		}
		w.order = append(requeue, w.order...)
		w.idle.Broadcast()
		w.mu.Unlock()
		if ctx.Err() == nil {
			slog.Error("status write failed, will retry", "keys", len(batch), "retryIn", delay, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, flushMaxDelay)
	}
}

// Pending counts the changes not yet in etcd.
func (w *StatusWriter) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) + w.inflight
}

// Get returns the last status written, pending or loaded at key.
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
