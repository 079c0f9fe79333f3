package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"

	"github.com/uspace-io/uspace/store"
)

// ReconcileFunc converges one key. desired is nil when the key has no
// intent (deleted, or an orphan found in the dataplane).
type ReconcileFunc func(ctx context.Context, key string, desired *store.KV) error

// Controller owns the desired cache and the queue for one kind of object.
type Controller struct {
	name      string
	reconcile ReconcileFunc
	queue     workqueue.TypedRateLimitingInterface[string]
	log       *slog.Logger
	metrics   *Metrics

	mu      sync.RWMutex
	desired map[string]store.KV
	since   map[string]time.Time // when a key was first queued since it last converged
	synced  chan struct{}
	once    sync.Once

	onIdle   func()
	idleOnce sync.Once
	gate     func(context.Context) error
}

// OnFirstIdle sets f to run once, the first time the queue runs empty
// after the first snapshot: the end of the start-up burst.
func (c *Controller) OnFirstIdle(f func()) { c.onIdle = f }

// Gate makes each worker call gate before every reconcile and wait for it
// to return: a process that may act only while it holds something (the
// host's registration) keeps every worker from touching the dataplane
// while it does not. An error (ctx ended, or what gate waits for is gone
// for good) stops the worker. Set it before Run.
func (c *Controller) Gate(gate func(context.Context) error) { c.gate = gate }

// Backoff bounds for failed reconciles.
const (
	BaseDelay = 50 * time.Millisecond
	MaxDelay  = 30 * time.Second
)

// New makes the controller of one kind of object; m may be nil (a process
// that exports no metrics).
func New(name string, rec ReconcileFunc, m *Metrics, log *slog.Logger) *Controller {
	return &Controller{
		name:      name,
		reconcile: rec,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](BaseDelay, MaxDelay),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name},
		),
		log:     log.With("controller", name),
		metrics: m,
		desired: map[string]store.KV{},
		since:   map[string]time.Time{},
		synced:  make(chan struct{}),
	}
}

// Replace installs a full snapshot (initial list or a relist after
// compaction) and queues every key that was or is desired, so deletions
// missed during the gap are reconciled too. The keys in first are queued
// ahead of them (work that prepares for the rest, such as a sweep).
func (c *Controller) Replace(kvs []store.KV, first ...string) {
	c.mu.Lock()
	old := c.desired
	c.desired = make(map[string]store.KV, len(kvs))
	for _, kv := range kvs {
		c.desired[kv.Key] = kv
	}
	c.mu.Unlock()
	for _, k := range first {
		c.Enqueue(k)
	}
	for k := range old {
		c.Enqueue(k)
	}
	for _, kv := range kvs {
		c.Enqueue(kv.Key)
	}
	c.once.Do(func() { close(c.synced) })
}

// Upsert records a put and queues its key.
func (c *Controller) Upsert(kv store.KV) {
	c.mu.Lock()
	c.desired[kv.Key] = kv
	c.mu.Unlock()
	c.Enqueue(kv.Key)
}

// Delete records a delete and queues its key.
func (c *Controller) Delete(key string) {
	c.mu.Lock()
	delete(c.desired, key)
	c.mu.Unlock()
	c.Enqueue(key)
}

// Enqueue queues a key for reconcile now.
func (c *Controller) Enqueue(key string) {
	c.mu.Lock()
	if _, ok := c.since[key]; !ok {
		c.since[key] = time.Now()
	}
	c.mu.Unlock()
	c.queue.Add(key)
}

// EnqueueAfter queues a key for reconcile once d has passed.
func (c *Controller) EnqueueAfter(key string, d time.Duration) {
	c.queue.AddAfter(key, d)
}

// EnqueueAll queues every desired key and every key that has not
// converged since it was last queued (a deletion that failed while the
// dataplane was away, say), e.g. after the dataplane came back: such a key
// would otherwise wait out its backoff, up to MaxDelay.
func (c *Controller) EnqueueAll() {
	c.mu.RLock()
	keys := make([]string, 0, len(c.desired)+len(c.since))
	for k := range c.desired {
		keys = append(keys, k)
	}
	for k := range c.since {
		if _, ok := c.desired[k]; !ok {
			keys = append(keys, k)
		}
	}
	c.mu.RUnlock()
	for _, k := range keys {
		c.Enqueue(k)
	}
}

// Get returns the desired value of a key.
func (c *Controller) Get(key string) (store.KV, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	kv, ok := c.desired[key]
	return kv, ok
}

// Keys lists the desired keys.
func (c *Controller) Keys() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	keys := make([]string, 0, len(c.desired))
	for k := range c.desired {
		keys = append(keys, k)
	}
	return keys
}

// List returns every desired key with its value.
func (c *Controller) List() []store.KV {
	c.mu.RLock()
	defer c.mu.RUnlock()
	kvs := make([]store.KV, 0, len(c.desired))
	for _, kv := range c.desired {
		kvs = append(kvs, kv)
	}
	return kvs
}

// Synced is closed once the first snapshot is in.
func (c *Controller) Synced() <-chan struct{} { return c.synced }

// Len is the queue depth.
func (c *Controller) Len() int { return c.queue.Len() }

// Run processes the queue with n workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(ctx) {
			}
		}()
	}
	wg.Wait()
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	if c.gate != nil {
		if err := c.gate(ctx); err != nil {
			if ctx.Err() == nil {
				c.log.Warn("worker stopped at its gate", "key", key, "err", err)
			}
			return false
		}
	}
	var desired *store.KV
	if kv, ok := c.Get(key); ok {
		desired = &kv
	}
	start := time.Now()
	err := c.reconcile(ctx, key, desired)
	c.metrics.observe(c.name, err, time.Since(start))
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		c.log.Warn("reconcile failed, will retry", "key", key, "retries", c.queue.NumRequeues(key), "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	c.mu.Lock()
	if t, ok := c.since[key]; ok {
		c.metrics.converged(c.name, time.Since(t))
		delete(c.since, key)
	}
	c.mu.Unlock()
	if c.onIdle != nil && c.queue.Len() == 0 {
		c.idleOnce.Do(c.onIdle)
	}
	return true
}

// Metrics are shared by every controller of a process.
type Metrics struct {
	reconciles  *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	convergence *prometheus.HistogramVec
}

// NewMetrics registers the controller metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uspace_reconciles_total", Help: "Reconciles by controller and result.",
		}, []string{"controller", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "uspace_reconcile_duration_seconds", Help: "Time spent in one reconcile.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"controller"}),
		convergence: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "uspace_convergence_seconds", Help: "From a change seen in etcd to its successful reconcile.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 12),
		}, []string{"controller"}),
	}
	reg.MustRegister(m.reconciles, m.duration, m.convergence)
	return m
}

// RegisterQueue exports a controller's queue depth.
func (m *Metrics) RegisterQueue(reg prometheus.Registerer, c *Controller) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "uspace_queue_depth", Help: "Keys waiting for reconcile.",
		ConstLabels: prometheus.Labels{"controller": c.name},
	}, func() float64 { return float64(c.Len()) }))
}

func (m *Metrics) observe(name string, err error, d time.Duration) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reconciles.WithLabelValues(name, result).Inc()
	m.duration.WithLabelValues(name).Observe(d.Seconds())
}

func (m *Metrics) converged(name string, d time.Duration) {
	if m == nil {
		return
	}
	m.convergence.WithLabelValues(name).Observe(d.Seconds())
}
