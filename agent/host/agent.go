package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/uspace-io/uspace/agent/controller"
	"github.com/uspace-io/uspace/agent/endpoint"
	"github.com/uspace-io/uspace/agent/reconcile/containerstatus"
	"github.com/uspace-io/uspace/agent/reconcile/crosshost"
	ifreconcile "github.com/uspace-io/uspace/agent/reconcile/interfaces"
	volreconcile "github.com/uspace-io/uspace/agent/reconcile/volumes"
	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/agent/statedir"
	"github.com/uspace-io/uspace/agent/statuswriter"
	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Config is what the host agent needs besides its etcd connection.
type Config struct {
	Host       string
	VPPSocket  string
	SPDKSocket string
	SharedDir  string
	// VolumeRoots are the vhost-user roots (--volume-root, repeatable) the
	// agent may create and delete volume files under: every volume's root
	// is one of them or lies inside one.
	VolumeRoots []string
	MetricsAddr string
	Version     string
	// LeaseTTL bounds how long a dead agent still looks registered, and
	// so how long a restart may take without peers noticing.
	LeaseTTL time.Duration
	// StateDir keeps, per host, the registration's lease for the next
	// agent to resume and the lock that lets one agent use it (package
	// statedir). Empty: nothing is kept, a restart registers afresh.
	StateDir string
	// OnStartupDone, if set, runs once, when the first burst of reconciles
	// (every intent, status and VPP object decoded at once) is over: where
	// the process, which owns the runtime's knobs, may return the burst's
	// garbage to the OS and apply its memory limit.
	OnStartupDone func()
	// Underlay (an address with prefix length) and Uplink (a Linux
	// interface) join this host to networks that span hosts: the agent
	// makes an af_packet interface on Uplink carrying Underlay, and VXLAN
	// tunnels from Underlay's address. Both empty: networks stay on this
	// host.
	Underlay string
	Uplink   string
	// UplinkNetns is the network namespace where Uplink's MTU and MAC are
	// read (VPP's, when it is not the agent's); "": the agent's own.
	UplinkNetns string
	// ContainerEndpoints serves every container with a network namespace
	// its own etcd endpoint there (package endpoint).
	ContainerEndpoints bool
}

// Agent is one host's reconciler.
type Agent struct {
	cfg    Config
	st     *store.Client
	vpp    *vpp.Client
	spdk   *spdk.Client
	log    *slog.Logger
	status *statuswriter.Writer
	reg    *prometheus.Registry

	ifaces  *controller.Controller
	volumes *controller.Controller
	// containers holds the container-side interface intents, only to
	// remove the statuses of those that are gone (ctrStatus).
	containers *controller.Controller
	ctrStatus  *containerstatus.Reconciler
	// endpoints opens and closes the containers' etcd endpoints (eps),
	// by container meta key; both nil without ContainerEndpoints.
	endpoints *controller.Controller
	eps       *endpoint.Set
	// cross joins networks that span hosts; nil unless the agent does.
	cross   *crosshost.Mesh
	metrics *controller.Metrics
	// registration is this host's, once made.
	regn atomic.Pointer[store.Registration]

	ifrec      *ifreconcile.Reconciler
	volrec     *volreconcile.Reconciler
	predecoded predecoded

	netMu       sync.RWMutex
	networks    map[string]schema.Network // by the name in their key: the last good value
	badNetworks map[string]error          // why a network's object is refused

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
		cfg:         cfg,
		st:          st,
		log:         log.With("host", cfg.Host),
		reg:         prometheus.NewRegistry(),
		networks:    map[string]schema.Network{},
		badNetworks: map[string]error{},
		started:     time.Now().UTC(),
	}
	a.status = statuswriter.New(st, a.log)
	m := controller.NewMetrics(a.reg)
	a.metrics = m
	a.ifrec = &ifreconcile.Reconciler{Status: a.status, Spec: a.interfaceSpec, Log: a.log}
	a.ifaces = controller.New("interfaces", a.ifrec.Reconcile, m, a.log)
	a.ifrec.Desired = a.ifaces.List
	a.ifrec.Enqueue = a.ifaces.Enqueue
	a.ifrec.EnqueueAll = a.ifaces.EnqueueAll
	a.volrec = &volreconcile.Reconciler{Status: a.status, Roots: cfg.VolumeRoots, Log: a.log}
	a.volumes = controller.New("volumes", a.volrec.Reconcile, m, a.log)
	a.volrec.Desired = a.volumes.List
	a.volrec.Enqueue = a.volumes.Enqueue
	a.volrec.EnqueueAll = a.volumes.EnqueueAll
	a.ctrStatus = &containerstatus.Reconciler{St: st, Status: a.status}
	a.containers = controller.New("container-statuses", a.ctrStatus.Reconcile, m, a.log)
	a.ctrStatus.Desired = a.containers.Get
	a.ctrStatus.EnqueueAfter = a.containers.EnqueueAfter
	if cfg.ContainerEndpoints {
		a.eps = endpoint.New(cfg.Host, st.Etcd(), a.log)
		a.endpoints = controller.New("container-endpoints", a.eps.Reconcile, m, a.log)
		a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "uspace_container_endpoints",
			Help: "Containers served an etcd endpoint in their network namespace.",
		}, func() float64 { return float64(a.eps.Len()) }))
	}
	m.RegisterQueue(a.reg, a.ifaces)
	m.RegisterQueue(a.reg, a.volumes)
	a.status.RegisterMetrics(a.reg)
	a.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "uspace_watch_lag_revisions",
			Help: "Revisions etcd was ahead of the last event the host watch delivered (non-zero while it catches up).",
		}, func() float64 { return float64(max(0, a.currentRev.Load()-a.lastRev.Load())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "uspace_sweep_refused_interfaces",
			Help: "uspace-tagged interfaces the last sweep left in VPP because nothing proved them this host's (wrong --host, empty or other etcd?).",
		}, func() float64 { return float64(len(a.ifrec.Refused())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "uspace_gone_containers_with_statuses",
			Help: "Containers whose meta is deleted and whose interface statuses the host agent has not removed yet (their own agent's grace, then the removal).",
		}, func() float64 { return float64(a.ctrStatus.Waiting()) }),
	)
	return a
}

// Run converges until ctx ends. It returns nil after a clean shutdown, and
// an error naming the cause when it cannot go on: another agent holds this
// host's registration, etcd refuses this identity (watch, registration or
// status writes), or the watch fails for good. Transient losses (etcd,
// VPP, SPDK unreachable) are retried, never returned.
func (a *Agent) Run(ctx context.Context) error {
	x, err := crosshost.New(crosshost.Config{Host: a.cfg.Host, Underlay: a.cfg.Underlay, Uplink: a.cfg.Uplink,
		Store: a.st, Interfaces: a.ifaces, Metrics: a.metrics, Log: a.log, NetworkVNI: a.networkVNI})
	if err != nil {
		return err
	}
	if x != nil {
		if err := x.ReadUplink(a.cfg.UplinkNetns); err != nil {
			return err
		}
	}
	a.cross = x
	// Before anything touches the dataplanes: a second agent for this
	// host on this machine stops here.
	state, err := a.lockState()
	if err != nil {
		return err
	}
	if state != nil {
		defer state.Close()
	}
	a.dialDataplanes()
	defer a.spdk.Close()
	defer a.vpp.Close()
	srv, err := a.serveHTTP()
	if err != nil {
		return err
	}
	defer srv.Close()

	// Every goroutine below belongs to g: the first to fail ends them all,
	// and Run returns only once each has.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(rctx)
	// What the workers start from is only read: it loads while the agent
	// registers. Nothing is written, opened or reconciled before the
	// registration is this agent's.
	loaded := a.load(gctx, g)
	reg, err := a.register(gctx, g, state)
	if err != nil {
		cancel()
		_ = g.Wait()
		return err
	}
	a.goWatch(gctx, g)
	if a.cross != nil {
		a.cross.Run(gctx, g, reg)
	}
	g.Go(func() error { return a.converge(gctx, g, loaded) })
	err = g.Wait()
	// g's context has ended: the registration stops renewing its lease
	// and leaves it, with the memberships bound to it, to the next agent.
	<-reg.Done()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// dialDataplanes makes the SPDK and VPP clients. The VPP client connects
// in the background and reports (re)connects as events: the agent starts,
// registers and reports "VPP not connected" while VPP is down, and
// re-applies everything once it is up. They are made before the HTTP
// server starts, which reads them.
func (a *Agent) dialDataplanes() {
	a.spdk = spdk.New(a.cfg.SPDKSocket, spdk.WithLogger(a.log))
	a.volrec.SPDK = a.spdk
	a.vpp = vpp.Dial(vpp.Config{Socket: a.cfg.VPPSocket, ClientName: "uspace-host-agent", Logger: a.log, InterfaceEvents: true})
	a.ifrec.VS = vppstate.NewCache(a.vpp, a.cfg.SharedDir, a.log)
}

// register takes this host's registration, lease-bound for as long as ctx
// lasts, resuming the lease state recorded, and watches it in g: losing
// it for good while ctx lives ends the agent. The workers wait while it
// is lost: an agent that is not the host's registered one changes neither
// VPP nor SPDK (it may have read them: see load).
func (a *Agent) register(ctx context.Context, g *errgroup.Group, state *statedir.Dir) (*store.Registration, error) {
	opts, err := a.registerOptions(state)
	if err != nil {
		return nil, err
	}
	reg, err := a.st.Register(ctx, schema.AgentKey(a.cfg.Host), a.registration, opts)
	if err != nil {
		return nil, registrationError(a.cfg.Host, err)
	}
	a.regn.Store(reg)
	if lease := reg.LeaseID(); lease == opts.Resume {
		a.log.Info("registration resumed under the previous agent's lease", "lease", fmt.Sprintf("%x", lease))
	} else {
		a.log.Info("registered under a new lease", "lease", fmt.Sprintf("%x", lease), "previous", fmt.Sprintf("%x", opts.Resume))
	}
	for _, c := range []*controller.Controller{a.ifaces, a.volumes, a.containers} {
		c.Gate(reg.Wait)
	}
	g.Go(func() error {
		select {
		case <-reg.Done():
			if ctx.Err() == nil {
				return registrationError(a.cfg.Host, reg.Err())
			}
		case <-ctx.Done():
		}
		return nil
	})
	return reg, nil
}

// loaded is what the workers start from: this host's statuses, read
// with VPP's state (done closes when both are in; err says why not).
type loaded struct {
	done   chan struct{}
	status []store.KV
	err    error
}

// load starts in g the reads the workers start from: the intent watches
// (their first lists fill the controllers' caches), VPP's state once it
// is connected (a short grace spares the first round of reconciles a
// burst of "not connected" statuses) and this host's statuses, the record
// of what to undo when an intent is gone. They overlap each other and the
// registration.
func (a *Agent) load(ctx context.Context, g *errgroup.Group) *loaded {
	g.Go(func() error { return a.st.ListWatch(ctx, schema.HostPrefix(a.cfg.Host), a.onHostEvent) })
	g.Go(func() error { return a.st.ListWatch(ctx, schema.NetworksPrefix(), a.onNetworkEvent) })
	l := &loaded{done: make(chan struct{})}
	g.Go(func() error {
		defer close(l.done)
		var load errgroup.Group
		load.Go(func() error {
			wctx, cancel := context.WithTimeout(ctx, vpp.StartGrace)
			defer cancel()
			if err := a.vpp.WaitConnected(wctx); err != nil {
				a.log.Warn("VPP not connected yet; interfaces report it until it is", "socket", a.cfg.VPPSocket, "err", err)
				return nil
			}
			if err := a.ifrec.VS.Warm(ctx); err != nil {
				a.log.Info("VPP state not read ahead; the first sweep reads it", "err", err)
			}
			return nil
		})
		load.Go(func() (err error) {
			l.status, err = a.status.Load(ctx, schema.StatusHostPrefix(a.cfg.Host))
			return err
		})
		l.err = load.Wait()
		return l.err
	})
	return l
}

// goWatch starts in g, once registered, the status writer, the dataplane
// watches and the endpoints: what acts, and what may end the agent.
func (a *Agent) goWatch(ctx context.Context, g *errgroup.Group) {
	g.Go(func() error { a.status.Run(ctx); return nil })
	g.Go(func() error {
		select {
		case <-a.status.Failed():
			return fmt.Errorf("host agent %s: %w", a.cfg.Host, a.status.Err())
		case <-ctx.Done():
			return nil
		}
	})
	g.Go(func() error { a.watchDataplanes(ctx); return nil })
	if a.eps != nil {
		// Endpoints need neither the registration nor a dataplane: a
		// container agent converges its own VPP whatever the host's.
		g.Go(func() error {
			a.endpoints.Run(ctx, 1)
			a.eps.Close()
			return nil
		})
	}
	g.Go(func() error { return a.volrec.Watch(ctx, a.cfg.SPDKSocket) })
}

// converge waits for what the workers start from, starts them in g and
// returns.
func (a *Agent) converge(ctx context.Context, g *errgroup.Group, l *loaded) error {
	synced := []<-chan struct{}{l.done, a.ifaces.Synced(), a.volumes.Synced(), a.containers.Synced()}
	if a.cross != nil {
		// Tunnels are desired only once every membership is known: a
		// worker started earlier would remove the ones that survived a
		// restart and make them again.
		synced = append(synced, a.cross.Synced())
	}
	for _, c := range synced {
		select {
		case <-c:
		case <-ctx.Done():
			return nil
		}
	}
	if l.err != nil {
		return nil // load's own goroutine returned it to g
	}
	for _, kv := range l.status {
		if k, err := schema.ParseKey(kv.Key); err == nil {
			a.enqueueStatusOrphan(k)
		}
	}

	if a.cfg.OnStartupDone != nil {
		a.ifaces.OnFirstIdle(a.cfg.OnStartupDone)
	}
	g.Go(func() error { a.ifaces.Run(ctx, 1); return nil })
	g.Go(func() error { a.volumes.Run(ctx, 1); return nil })
	g.Go(func() error { a.containers.Run(ctx, 1); return nil })
	a.ready.Store(true)
	a.log.Info("host agent running", "vppSocket", a.cfg.VPPSocket, "spdkSocket", a.cfg.SPDKSocket)
	return nil
}

// registrationError says who holds host's registration when that is why
// registering (or decommissioning) failed.
func registrationError(host string, err error) error {
	var held *store.HeldError
	if !errors.As(err, &held) {
		return fmt.Errorf("register host agent %s: %w", host, err)
	}
	holder := string(held.Value)
	if ag, derr := schema.DecodeAs[schema.Agent](held.Value); derr == nil {
		holder = fmt.Sprintf("version %s started at %s", ag.Version, ag.StartedAt.Format(time.RFC3339))
	}
	return fmt.Errorf("another host agent is live for host %s: %s holds %s under lease %x, which it keeps alive; stop it first, or give this agent another --host",
		host, holder, held.Key, held.Lease)
}

// enqueueStatusOrphan queues the intent key a status mirrors, so the
// reconcile of a key without intent undoes what the status recorded.
func (a *Agent) enqueueStatusOrphan(k schema.Key) {
	switch k.Kind {
	case schema.KindInterfaceKey, schema.KindTunnelKey, schema.KindUplinkKey:
		a.ifaces.Enqueue(k.IntentOf().String())
	case schema.KindVolumeKey:
		a.volumes.Enqueue(k.IntentOf().String())
	case schema.KindContainerInterfaceKey:
		a.containers.Enqueue(k.IntentOf().String())
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
	if a.eps != nil {
		// First: a watch on an endpoint opened for this event must find
		// the event's revision in the hub.
		a.eps.Observe(ev)
	}
	switch ev.Type {
	case store.Sync:
		var ifs, vols, cifs, metas []store.KV
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
			case schema.KindContainerInterfaceKey, schema.KindContainerMetaKey:
				cifs = append(cifs, kv)
			}
			if k.Kind == schema.KindContainerMetaKey {
				metas = append(metas, kv)
			}
		}
		if a.endpoints != nil {
			a.endpoints.Replace(metas)
		}
		a.predecoded.fill(ifs)
		if a.cross != nil {
			a.cross.ReplaceInterfaces(ifs)
		} else {
			a.ifaces.Replace(ifs, ifreconcile.SweepKey)
		}
		a.volumes.Replace(vols)
		a.containers.Replace(cifs)
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
		if k.Kind == schema.KindContainerMetaKey && a.endpoints != nil {
			if ev.Type == store.Put {
				a.endpoints.Upsert(ev.KV)
			} else {
				a.endpoints.Delete(ev.KV.Key)
			}
		}
		if k.Kind == schema.KindInterfaceKey && a.cross != nil {
			a.cross.InterfaceChanged(ev)
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
	case schema.KindContainerInterfaceKey, schema.KindContainerMetaKey:
		return a.containers
	}
	return nil
}

// readiness says whether the agent does its job, and what stops it: not
// synced yet, not registered, statuses not reaching etcd, or a sweep that
// refused to remove interfaces nothing proves this host's.
func (a *Agent) readiness() (bool, map[string]any) {
	state := map[string]any{
		"synced":       a.ready.Load(),
		"vppConnected": a.vpp.Connected(),
		"queue":        map[string]int{"interfaces": a.ifaces.Len(), "volumes": a.volumes.Len()},
	}
	ready := a.ready.Load()
	if reg := a.regn.Load(); reg == nil || reg.Err() != nil {
		ready = false
		if reg != nil {
			state["registration"] = reg.Err().Error()
		}
	}
	if err := a.status.Err(); err != nil {
		ready = false
		state["statusWrites"] = err.Error()
	}
	if refused := a.ifrec.Refused(); len(refused) > 0 {
		ready = false
		state["sweepRefused"] = fmt.Sprintf("%d uspace-tagged interfaces in VPP match no intent or status of host %s; left alone (wrong --host, or an empty or other etcd?)", len(refused), a.cfg.Host)
	}
	return ready, state
}

func (a *Agent) serveHTTP() (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, state := a.readiness()
		if !ready {
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
