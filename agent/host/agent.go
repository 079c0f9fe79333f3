// Package host is the host agent: it watches this host's intents in etcd
// and converges the host's VPP (interfaces, bridge domains) and SPDK
// (vhost-user block devices), writing back what it applied.
package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/uspace-io/uspace/agent/controller"
	"github.com/uspace-io/uspace/agent/ifsync"
	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Config is what the host agent needs besides its etcd connection.
type Config struct {
	Host        string
	VPPSocket   string
	SPDKSocket  string
	SharedDir   string
	VolumeRoot  string
	MetricsAddr string
	Version     string
	// LeaseTTL bounds how long a dead agent still looks registered.
	LeaseTTL time.Duration
	// MemoryLimit is the Go runtime's soft memory limit in bytes, applied
	// once the start-up burst is over; 0 leaves the runtime's own.
	MemoryLimit int64
}

const vppStartGrace = 5 * time.Second

// Agent is one host's reconciler.
type Agent struct {
	cfg    Config
	st     *store.Client
	vpp    *vpp.Client
	spdk   *spdk.Client
	log    *slog.Logger
	status *controller.StatusWriter
	reg    *prometheus.Registry

	ifaces  *controller.Controller
	volumes *controller.Controller

	ifsync *ifsync.Reconciler

	netMu    sync.RWMutex
	networks map[string]schema.Network

	lastRev    atomic.Int64 // last revision delivered by the host watch
	currentRev atomic.Int64 // latest revision etcd told us about
	ready      atomic.Bool
	started    time.Time
}

func New(cfg Config, st *store.Client, log *slog.Logger) *Agent {
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	a := &Agent{
		cfg:      cfg,
		st:       st,
		log:      log.With("host", cfg.Host),
		status:   controller.NewStatusWriter(st),
		reg:      prometheus.NewRegistry(),
		networks: map[string]schema.Network{},
		started:  time.Now().UTC(),
	}
	m := controller.NewMetrics(a.reg)
	a.ifsync = &ifsync.Reconciler{Status: a.status, Spec: a.interfaceSpec}
	a.ifaces = controller.New("interfaces", a.ifsync.Reconcile, m, a.log)
	a.ifsync.Desired = a.ifaces.List
	a.ifsync.Enqueue = a.ifaces.Enqueue
	a.ifsync.EnqueueAll = a.ifaces.EnqueueAll
	a.volumes = controller.New("volumes", a.reconcileVolume, m, a.log)
	m.RegisterQueue(a.reg, a.ifaces)
	m.RegisterQueue(a.reg, a.volumes)
	a.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "uspace_watch_lag_revisions",
			Help: "Revisions etcd was ahead of the last event the host watch delivered (non-zero while it catches up).",
		}, func() float64 { return float64(max(0, a.currentRev.Load()-a.lastRev.Load())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "uspace_status_writes_pending",
			Help: "Status changes made by reconciles that are not in etcd yet (status writes are batched).",
		}, func() float64 { return float64(a.status.Pending()) }),
	)
	return a
}

// Run converges until ctx ends. It returns nil after a clean shutdown.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	srv, err := a.serveHTTP()
	if err != nil {
		return err
	}
	defer srv.Close()

	a.spdk = spdk.New(a.cfg.SPDKSocket, spdk.WithLogger(a.log))
	defer a.spdk.Close()
	// The VPP client connects in the background and reports (re)connects as
	// events: the agent starts, registers and reports "VPP not connected"
	// while VPP is down, and re-applies everything once it is up.
	a.vpp = vpp.Dial(vpp.Config{Socket: a.cfg.VPPSocket, ClientName: "uspace-host-agent", Logger: a.log, InterfaceEvents: true})
	defer a.vpp.Close()
	a.ifsync.VS = vppstate.NewCache(a.vpp, a.cfg.SharedDir, a.log)
	// A short grace for the first connection spares the first round of
	// reconciles a burst of "not connected" statuses.
	wctx, wcancel := context.WithTimeout(ctx, vppStartGrace)
	if err := a.vpp.WaitConnected(wctx); err != nil {
		a.log.Warn("VPP not connected yet; interfaces report it until it is", "socket", a.cfg.VPPSocket, "err", err)
	}
	wcancel()

	// Reading VPP's state, this host's statuses and its intents are
	// independent: they overlap, and the workers start once all are in.
	warmed := make(chan struct{})
	go func() {
		defer close(warmed)
		if err := a.ifsync.VS.Warm(ctx); err != nil {
			a.log.Info("VPP state not read ahead; the first sweep reads it", "err", err)
		}
	}()
	// Statuses whose intent is gone are the record of what to undo.
	type loaded struct {
		kvs []store.KV
		err error
	}
	prevc := make(chan loaded, 1)
	go func() {
		kvs, err := a.status.Load(ctx, schema.StatusHostPrefix(a.cfg.Host))
		prevc <- loaded{kvs, err}
	}()

	reg, err := a.st.Register(ctx, schema.AgentKey(a.cfg.Host), a.registration, a.cfg.LeaseTTL)
	if err != nil {
		return fmt.Errorf("register host agent %s: %w", a.cfg.Host, err)
	}

	errc := make(chan error, 3)
	go func() {
		errc <- a.st.ListWatch(ctx, schema.HostPrefix(a.cfg.Host), a.onHostEvent)
	}()
	go func() {
		errc <- a.st.ListWatch(ctx, schema.NetworksPrefix(), a.onNetworkEvent)
	}()
	go a.watchDataplanes(ctx)
	go a.watchSPDK(ctx)

	select {
	case <-a.ifaces.Synced():
	case err := <-errc:
		return err
	case <-ctx.Done():
		return nil
	}
	<-a.volumes.Synced()
	prev := <-prevc
	if prev.err != nil {
		return prev.err
	}
	for _, kv := range prev.kvs {
		if k, err := schema.ParseKey(kv.Key); err == nil {
			a.enqueueStatusOrphan(k)
		}
	}
	<-warmed

	// The start-up burst (every intent, status and VPP object decoded at
	// once) leaves the heap far above what the agent keeps: return it to
	// the OS now rather than whenever the scavenger gets to it, and from
	// now on hold the steady state to the memory limit.
	a.ifaces.OnFirstIdle(func() {
		if a.cfg.MemoryLimit > 0 {
			debug.SetMemoryLimit(a.cfg.MemoryLimit)
		}
		debug.FreeOSMemory()
	})

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.ifaces.Run(ctx, 1) }()
	go func() { defer wg.Done(); a.volumes.Run(ctx, 1) }()
	a.ready.Store(true)
	a.log.Info("host agent running", "vppSocket", a.cfg.VPPSocket, "spdkSocket", a.cfg.SPDKSocket)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			runErr = err
		}
	}
	cancel()
	wg.Wait()
	<-reg.Done()
	return runErr
}

// enqueueStatusOrphan queues the intent key a status mirrors, so the
// reconcile of a key without intent undoes what the status recorded.
func (a *Agent) enqueueStatusOrphan(k schema.Key) {
	switch k.Kind {
	case schema.KindInterfaceKey:
		a.ifaces.Enqueue(k.IntentOf().String())
	case schema.KindVolumeKey:
		a.volumes.Enqueue(k.IntentOf().String())
	}
}

func (a *Agent) registration() []byte {
	reg := &schema.Agent{Host: a.cfg.Host, Version: a.cfg.Version, StartedAt: a.started}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if v, ok := a.vpp.ConnectedVersion(); ok {
		reg.VPPVersion = v.Version
	}
	if v, err := a.spdk.SpdkGetVersion(ctx); err == nil {
		reg.SPDKVersion = v.Version
	}
	b, err := schema.Encode(reg)
	if err != nil {
		panic(fmt.Sprintf("encode registration of a validated host: %v", err)) // host was validated at start
	}
	return b
}

func (a *Agent) onHostEvent(ev store.Event) error {
	switch ev.Type {
	case store.Sync:
		var ifs, vols []store.KV
		for _, kv := range ev.Snapshot {
			k, err := schema.ParseKey(kv.Key)
			if err != nil {
				a.log.Warn("ignoring key outside the v1 layout", "key", kv.Key, "err", err)
				continue
			}
			switch k.Kind {
			case schema.KindInterfaceKey:
				ifs = append(ifs, kv)
			case schema.KindVolumeKey:
				vols = append(vols, kv)
			}
		}
		a.ifaces.Replace(ifs, ifsync.SweepKey)
		a.volumes.Replace(vols)
	case store.Put, store.Delete:
		k, err := schema.ParseKey(ev.KV.Key)
		if err != nil {
			a.log.Warn("ignoring key outside the v1 layout", "key", ev.KV.Key, "err", err)
			break
		}
		c := a.controllerFor(k.Kind)
		if c == nil {
			break
		}
		if ev.Type == store.Put {
			c.Upsert(ev.KV)
		} else {
			c.Delete(ev.KV.Key)
		}
	}
	a.lastRev.Store(ev.Revision)
	a.currentRev.Store(max(ev.Current, ev.Revision))
	return nil
}

func (a *Agent) controllerFor(kind schema.KeyKind) *controller.Controller {
	switch kind {
	case schema.KindInterfaceKey:
		return a.ifaces
	case schema.KindVolumeKey:
		return a.volumes
	}
	return nil
}

func (a *Agent) onNetworkEvent(ev store.Event) error {
	a.netMu.Lock()
	switch ev.Type {
	case store.Sync:
		a.networks = map[string]schema.Network{}
		for _, kv := range ev.Snapshot {
			if n, err := schema.DecodeAs[schema.Network](kv.Value); err == nil {
				a.networks[n.Name] = *n
			}
		}
	case store.Put:
		if n, err := schema.DecodeAs[schema.Network](ev.KV.Value); err == nil {
			a.networks[n.Name] = *n
		}
	case store.Delete:
		if k, err := schema.ParseKey(ev.KV.Key); err == nil {
			delete(a.networks, k.Network)
		}
	}
	a.netMu.Unlock()
	if ev.Type != store.Progress {
		// A network's settings shape every member's bridge domain.
		a.ifaces.EnqueueAll()
	}
	return nil
}

func (a *Agent) network(name string) (schema.Network, bool) {
	a.netMu.RLock()
	defer a.netMu.RUnlock()
	n, ok := a.networks[name]
	return n, ok
}

func (a *Agent) serveHTTP() (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		state := map[string]any{
			"synced":       a.ready.Load(),
			"vppConnected": a.vpp != nil && a.vpp.Connected(),
			"queue":        map[string]int{"interfaces": a.ifaces.Len(), "volumes": a.volumes.Len()},
		}
		if !a.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(state)
	})
	if a.cfg.MetricsAddr == "" {
		return &http.Server{}, nil
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", a.cfg.MetricsAddr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	a.log.Info("serving metrics and health", "addr", ln.Addr().String())
	return srv, nil
}
