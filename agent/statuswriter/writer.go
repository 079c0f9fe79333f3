package statuswriter

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Status is a status value that carries the time it was written.
type Status interface {
	schema.Object
	Stamp(time.Time)
}

// Writer writes status keys only when their content changes, so a
// reconcile that finds nothing to do costs etcd nothing.
//
// Writes are asynchronous and batched: Put and Delete record the change and
// return; Run, started by the writer's owner, writes what is pending in
// transactions of up to store.MaxOps keys, starting as soon as there is
// something to write. A lone status goes out at once; while a transaction
// is in flight, further changes gather for the next one, so a burst (the
// initial sync) costs one fsync per batch instead of one per key. A
// transaction that failed because etcd was unreachable (or full, or busy)
// is retried with backoff until it succeeds or a newer change to the same
// key replaces it. One etcd refused for what it holds (a value too large,
// say) is split:
// its changes are written one by one, and a change etcd refuses on its own
// is set aside and retried alone with backoff, so it never holds up the
// others. When etcd refuses this identity (permission denied,
// authentication failed) retrying cannot cure it: the writer stops, Put and
// Delete fail with that error from then on, and Failed is closed so the
// agent can exit and say why.
type Writer struct {
	st   *store.Client
	log  *slog.Logger
	mu   sync.Mutex
	last map[string]known // key -> the status with a zero stamp (written, pending or loaded)
	// pending holds the changes not written yet, at most one per key, in
	// the order they were first made.
	pending  map[string]store.Op
	order    []string
	kick     chan struct{} // a change is pending: wakes Run
	flushing bool          // Run is writing (a transaction in flight or a retry due)
	stopped  bool          // Run has returned: nothing more is written
	inflight []string      // keys of the transaction being written
	// alone counts the changes at the head of order to be written one per
	// transaction: they were in a transaction etcd refused.
	alone int
	// stuck holds the changes etcd refused on their own (not for this
	// identity, nor for being unreachable): retried alone, with backoff,
	// until written or replaced by a newer change of their key.
	stuck    map[string]store.Op
	stuckErr error // why the last of them was refused
	failures int   // failed transactions so far
	lastErr  error // of the last failed transaction
	failing  bool  // the last transaction failed
	terminal error // etcd refused this identity: nothing more is written
	failed   chan struct{}
	idle     *sync.Cond // signalled after every transaction, when nothing is pending or in flight, and when Run returns
}

// New makes a writer that writes through st and logs failed writes to
// log. Nothing is written until its owner starts Run.
func New(st *store.Client, log *slog.Logger) *Writer {
	w := &Writer{
		st: st, log: log,
		last: map[string]known{}, pending: map[string]store.Op{}, stuck: map[string]store.Op{},
		kick: make(chan struct{}, 1), failed: make(chan struct{}),
	}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// Failed is closed when a write failed for good (Err says why).
func (w *Writer) Failed() <-chan struct{} { return w.failed }

// Err is why statuses are not being written right now: the terminal error,
// the error of the last transaction while it is being retried, or why etcd
// refuses the changes set aside; nil while every write succeeds.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.terminal != nil:
		return w.terminal
	case w.failing:
		return w.lastErr
	case len(w.stuck) > 0:
		return fmt.Errorf("%d statuses refused by etcd, retried alone: %w", len(w.stuck), w.stuckErr)
	}
	return nil
}

// Failures counts the status transactions that failed so far.
func (w *Writer) Failures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failures
}

// Load reads the statuses under prefix, so a restarted agent neither
// rewrites unchanged statuses nor forgets ones whose intent is gone.
func (w *Writer) Load(ctx context.Context, prefix string) ([]store.KV, error) {
	kvs, _, err := w.st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("load statuses under %s: %w", prefix, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, kv := range kvs {
		o, err := schema.Decode(kv.Value)
		if s, ok := o.(Status); err == nil && ok {
			s.Stamp(time.Time{})
			w.last[kv.Key] = known{obj: s}
			continue
		}
		w.last[kv.Key] = known{} // unreadable: rewrite on next Put
	}
	return kvs, nil
}

// known is a status as last put (its encoding) or loaded (decoded: a
// restart's reconciles compare most statuses with what they would put, and
// an equal one is never encoded), each with a zero stamp; neither for one
// that could not be read.
type known struct {
	norm []byte
	obj  Status
}

// encoded is k's encoding, nil when unreadable.
func (k known) encoded() []byte {
	if k.norm == nil && k.obj != nil {
		if b, err := schema.Encode(k.obj); err == nil {
			return b
		}
	}
	return k.norm
}

// Put writes s at key unless the same status is already there (or on its
// way there). The write is Run's: it does not end with the caller's
// context.
func (w *Writer) Put(_ context.Context, key string, s Status) error {
	s.Stamp(time.Time{})
	w.mu.Lock()
	prev, ok := w.last[key]
	terminal := w.terminal
	w.mu.Unlock()
	if terminal != nil {
		return fmt.Errorf("write status %s: %w", key, terminal)
	}
	// A loaded status is compared as a value: one that differs only in
	// how it is held (a nil slice against an empty one) is written again,
	// once.
	if ok && prev.obj != nil && schema.Equal(prev.obj, s) {
		return nil
	}
	norm, err := schema.Encode(s)
	if err != nil {
		return fmt.Errorf("write status %s: %w", key, err)
	}
	if ok && prev.obj == nil && bytes.Equal(prev.norm, norm) {
		return nil
	}
	s.Stamp(time.Now().UTC())
	val, err := schema.Encode(s)
	if err != nil {
		return fmt.Errorf("write status %s: %w", key, err)
	}
	w.mu.Lock()
	w.last[key] = known{norm: norm}
	w.enqueueLocked(store.Op{Key: key, Value: val})
	w.mu.Unlock()
	return nil
}

// Delete removes the status at key if this writer knows of one.
func (w *Writer) Delete(_ context.Context, key string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.last[key]; !ok {
		return nil
	}
	return w.deleteLocked(key)
}

// DeleteAny removes the status at key whoever wrote it: the statuses of a
// container agent, which outlive the container when it stops before its
// interfaces are deleted.
func (w *Writer) DeleteAny(_ context.Context, key string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.deleteLocked(key)
}

func (w *Writer) deleteLocked(key string) error {
	if w.terminal != nil {
		return fmt.Errorf("delete status %s: %w", key, w.terminal)
	}
	delete(w.last, key)
	w.enqueueLocked(store.Op{Key: key, Delete: true})
	return nil
}

// enqueueLocked records op as the pending change of its key and wakes Run.
// It replaces a change of that key set aside.
func (w *Writer) enqueueLocked(op store.Op) {
	delete(w.stuck, op.Key)
	if _, ok := w.pending[op.Key]; !ok {
		w.order = append(w.order, op.Key)
	}
	w.pending[op.Key] = op
	select {
	case w.kick <- struct{}{}:
	default: // Run is woken already
	}
}

// Flush waits until every change made so far is written, or set aside
// because etcd refused it on its own (Err reports those). It returns early
// with the error of a write that fails meanwhile (Run keeps retrying it),
// when ctx ends, or when Run has returned with changes still pending (the
// statuses they were for are rewritten by the next reconcile of their
// keys, in a writer that runs). Before Run starts, Flush waits for it.
func (w *Writer) Flush(ctx context.Context) error {
	return w.wait(ctx, "write statuses", func() (bool, error) { return len(w.pending) == 0 && !w.flushing, nil })
}

// Written waits until the last change of key is in etcd: what a caller
// needs before acting on a status as a durable record (Get also returns
// changes not written yet). It returns at once when that change is
// already written (or was loaded), and early, with the error, when a write
// fails meanwhile, etcd refused that change, ctx ends or Run has returned.
func (w *Writer) Written(ctx context.Context, key string) error {
	what := "write status " + key
	return w.wait(ctx, what, func() (bool, error) {
		if _, ok := w.stuck[key]; ok {
			return false, w.stuckErr
		}
		_, pending := w.pending[key]
		return !pending && !slices.Contains(w.inflight, key), nil
	})
}

// wait blocks until done holds (called with w.mu held), or a reason to
// give up comes first: done's error among them.
func (w *Writer) wait(ctx context.Context, what string, done func() (bool, error)) error {
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
			return fmt.Errorf("%s: %w", what, w.terminal)
		}
		if ok, err := done(); ok {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if w.failures != failures {
			return fmt.Errorf("%s: %w", what, w.lastErr)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if w.stopped {
			return fmt.Errorf("%s: writer stopped with changes pending", what)
		}
		w.idle.Wait()
	}
}

// Bounds of the wait between retries of a failed write.
const (
	flushBaseDelay = 50 * time.Millisecond
	flushMaxDelay  = 5 * time.Second
)

// Run writes the pending changes until ctx ends; it returns then. Changes
// still pending at that point are not written. After etcd refused a
// write for good (Failed) it writes nothing more and waits for ctx.
func (w *Writer) Run(ctx context.Context) {
	defer func() {
		w.mu.Lock()
		w.stopped = true
		w.idle.Broadcast()
		w.mu.Unlock()
	}()
	retry := store.NewBackoff(flushBaseDelay, flushMaxDelay)
	stuck := store.NewBackoff(flushBaseDelay, flushMaxDelay)
	var again <-chan time.Time // due retry of the changes set aside
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-again:
			again = nil
			w.retryStuck()
		}
		if !w.drain(ctx, retry) {
			<-ctx.Done()
			return
		}
		switch {
		case !w.hasStuck():
			again = nil
			stuck.Reset()
		case again == nil:
			again = time.After(stuck.NextBackOff())
		}
	}
}

func (w *Writer) hasStuck() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.stuck) > 0
}

// retryStuck puts the changes set aside back in front, each to be written
// alone.
func (w *Writer) retryStuck() {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := slices.Sorted(maps.Keys(w.stuck))
	for _, k := range keys {
		w.pending[k] = w.stuck[k]
		delete(w.stuck, k)
	}
	w.order = append(keys, w.order...)
	w.alone += len(keys)
}

// drain writes batches until nothing is pending or ctx ends, retrying a
// batch that failed for want of etcd with backoff b. It returns false once
// etcd refused a write for good.
func (w *Writer) drain(ctx context.Context, b backoff.BackOff) bool {
	for {
		w.mu.Lock()
		if len(w.pending) == 0 || ctx.Err() != nil {
			w.flushing = false
			w.idle.Broadcast()
			w.mu.Unlock()
			return true
		}
		w.flushing = true
		batch := w.takeBatchLocked()
		w.mu.Unlock()

		_, err := w.st.Apply(ctx, batch...)
		w.mu.Lock()
		w.inflight = nil
		if err == nil {
			w.failing = false
			w.idle.Broadcast()
			w.mu.Unlock()
			b.Reset()
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
			w.log.Error("status write refused by etcd; giving up", "keys", len(batch), "err", err)
			return false
		}
		if store.IsRefusedRequest(err) {
			// etcd refuses what it was sent: find the change at fault
			// without holding up the rest.
			w.refusedLocked(batch, err)
			w.idle.Broadcast()
			w.mu.Unlock()
			continue
		}
		w.requeueLocked(batch)
		w.idle.Broadcast()
		w.mu.Unlock()
		delay := b.NextBackOff()
		if ctx.Err() == nil {
			w.log.Error("status write failed, will retry", "keys", len(batch), "retryIn", delay, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
}

// takeBatchLocked takes the next transaction's changes off the queue.
func (w *Writer) takeBatchLocked() []store.Op {
	n := min(len(w.order), store.MaxOps)
	if w.alone > 0 {
		n, w.alone = 1, w.alone-1
	}
	batch := make([]store.Op, 0, n)
	for _, k := range w.order[:n] {
		batch = append(batch, w.pending[k])
		delete(w.pending, k)
	}
	w.order = append(w.order[:0:0], w.order[n:]...)
	w.inflight = make([]string, 0, n)
	for _, op := range batch {
		w.inflight = append(w.inflight, op.Key)
	}
	return batch
}

// requeueLocked puts a failed batch back in front, except where a newer
// change took its place meanwhile, and returns how many went back.
func (w *Writer) requeueLocked(batch []store.Op) int {
	var requeue []string
	for _, op := range batch {
		if _, newer := w.pending[op.Key]; !newer {
			w.pending[op.Key] = op
			requeue = append(requeue, op.Key)
		}
	}
	w.order = append(requeue, w.order...)
	return len(requeue)
}

// refusedLocked handles a batch etcd refused for a reason other than the
// identity: a batch of several is written again one change at a time; a
// change refused on its own is set aside.
func (w *Writer) refusedLocked(batch []store.Op, err error) {
	if len(batch) > 1 {
		w.alone += w.requeueLocked(batch)
		w.log.Warn("status transaction refused by etcd; writing its changes one by one", "keys", len(batch), "err", err)
		return
	}
	op := batch[0]
	if _, newer := w.pending[op.Key]; newer {
		return
	}
	w.stuck[op.Key], w.stuckErr = op, err
	w.log.Error("status write refused by etcd; retrying it alone, other statuses go on", "key", op.Key, "err", err)
}

// Pending counts the changes not yet in etcd.
func (w *Writer) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) + len(w.inflight) + len(w.stuck)
}

// Keys lists the status keys this writer knows of.
func (w *Writer) Keys() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Collect(maps.Keys(w.last))
}

// Get returns the last status put (written or not yet: Written tells) or
// loaded at key.
func (w *Writer) Get(key string) ([]byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k, ok := w.last[key]
	if ok && k.norm == nil && k.obj != nil {
		k = known{norm: k.encoded()}
		w.last[key] = k
	}
	return k.norm, ok
}
