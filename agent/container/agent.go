package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	"github.com/uspace-io/uspace/agent/controller"
	ifreconcile "github.com/uspace-io/uspace/agent/reconcile/interfaces"
	"github.com/uspace-io/uspace/agent/statuswriter"
	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/deviceinfo"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

type Config struct {
	Host      string
	Identity  Identity
	VPPSocket string
	// SharedDir is where the memif/vhost-user sockets shared with the host
	// appear inside the container; only socket files there are removed.
	SharedDir string
	// DeviceInfoDir, when set, holds one NPWG device-info file per
	// interface of the container (<interface>.json, package deviceinfo):
	// written once the interface is in VPP, removed when it goes, so an
	// application sharing the directory (an emptyDir) finds its sockets.
	DeviceInfoDir string
	// Once applies the current intents and returns (init containers).
	Once bool
	// ProbeInterval is how often the agent checks that etcd still accepts
	// its identity (see probe); 0 means DefaultProbeInterval.
	ProbeInterval time.Duration
}

// DefaultProbeInterval: a revoked or deleted etcd identity ends the agent
// within about this long plus one request, at the cost of one read a
// minute per idle container agent (the bound for a node of many
// containers); an agent that converges something meets the refusal sooner,
// at its next status write.
const DefaultProbeInterval = time.Minute

type Agent struct {
	cfg       Config
	st        *store.Client
	log       *slog.Logger
	container string
	vpp       *vpp.Client
	ifrec     *ifreconcile.Reconciler
	status    *statuswriter.Writer
	ifaces    *controller.Controller
}

func New(cfg Config, st *store.Client, log *slog.Logger) *Agent {
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	return &Agent{cfg: cfg, st: st, log: log, status: statuswriter.New(st, log)}
}

// Run converges until ctx ends (nil after a clean shutdown) or, with Once,
// until the current intents are applied. It returns an error naming the
// cause when it cannot go on: etcd refuses its identity (probe, watch or
// status writes), its client was closed, or (Once) no container with
// intents matches it. Transient losses of etcd or VPP are ridden out.
func (a *Agent) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { a.status.Run(gctx); return nil })
	g.Go(func() error { return a.probe(gctx) })
	g.Go(func() error {
		err := a.serve(gctx)
		if err == nil && a.cfg.Once {
			// Done: end the probe too.
			return errOnceDone
		}
		return err
	})
	err := g.Wait()
	switch {
	case errors.Is(err, errOnceDone):
		return nil
	case errors.Is(ctx.Err(), context.Canceled):
		// Stopped (SIGTERM): whatever the goroutines said on the way out.
		return nil
	}
	return err
}

var errOnceDone = errors.New("intents applied once")

// probe checks every ProbeInterval that etcd still accepts this agent's
// identity: a watch that is already open keeps delivering after the user
// is deleted or its password changed, so without a request now and then
// the agent would go on as if nothing happened, converging nothing new.
// One count-only, serializable read of the host's container metas (which
// this identity may read) per interval.
func (a *Agent) probe(ctx context.Context) error {
	t := time.NewTicker(a.cfg.ProbeInterval)
	defer t.Stop()
	prefix := schema.ContainersPrefix(a.cfg.Host)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, a.cfg.ProbeInterval)
		_, err := a.st.Etcd().Get(rctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable(), clientv3.WithLimit(1))
		cancel()
		switch {
		case err == nil || ctx.Err() != nil:
		case store.IsDenied(err):
			return fmt.Errorf("etcd no longer accepts this container agent's identity (reading %s): %w", prefix, err)
		case a.st.Etcd().Ctx().Err() != nil:
			return fmt.Errorf("etcd client closed: %w", err)
		default:
			a.log.Warn("etcd unreachable; retrying", "err", err)
		}
	}
}

// serve finds the container, then converges it until ctx ends.
func (a *Agent) serve(ctx context.Context) error {
	id, err := a.cfg.Identity.Discover(ctx, a.st, a.cfg.Host, a.cfg.Once, a.log)
	if err != nil {
		return err
	}
	if err := schema.ValidateContainerID("container", id); err != nil {
		return err
	}
	a.container = id
	log := a.log.With("container", id)
	log.Info("serving container", "host", a.cfg.Host)

	// The client reconnects with backoff: VPP may start after the agent.
	a.vpp = vpp.Dial(vpp.Config{Socket: a.cfg.VPPSocket, ClientName: "uspace-container-agent", Logger: log})
	defer a.vpp.Close()
	a.ifrec = &ifreconcile.Reconciler{VS: vppstate.NewCache(a.vpp, a.cfg.SharedDir, log), Status: a.status, Spec: interfaceSpec, Log: log}
	if _, err := a.status.Load(ctx, schema.StatusContainerPrefix(a.cfg.Host, id)); err != nil {
		return err
	}
	if a.cfg.Once {
		return a.once(ctx)
	}

	// No metrics: the container agent serves no HTTP endpoint (it has no
	// --metrics-addr), so a registry would be built for nobody.
	a.ifaces = controller.New("container-interfaces", a.reconcile, nil, log)
	a.ifrec.Desired = a.ifaces.List
	// Every goroutine below belongs to g; the first to fail ends the rest.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.st.ListWatch(gctx, schema.ContainerPrefix(a.cfg.Host, id), a.onEvent) })
	g.Go(func() error { a.watchVPP(gctx, log); return nil })
	g.Go(func() error {
		select {
		case <-a.status.Failed():
			return fmt.Errorf("container agent for %s: %w", id, a.status.Err())
		case <-gctx.Done():
			return nil
		}
	})
	g.Go(func() error {
		select {
		case <-a.ifaces.Synced():
		case <-gctx.Done():
			return nil
		}
		wctx, cancel := context.WithTimeout(gctx, vpp.StartGrace)
		if err := a.vpp.WaitConnected(wctx); err != nil && gctx.Err() == nil {
			log.Warn("VPP not connected yet; interfaces report it until it is", "socket", a.cfg.VPPSocket, "err", err)
		}
		cancel()
		// Statuses without an intent: the interface went while we were away.
		for _, k := range a.status.Keys() {
			if pk, err := schema.ParseKey(k); err == nil {
				a.ifaces.Enqueue(pk.IntentOf().String())
			}
		}
		a.sweepDeviceInfo(log)
		a.ifaces.Run(gctx, 1)
		return nil
	})
	return g.Wait()
}

// once waits (bounded by ctx) for VPP, applies every current intent once
// and reports the first failure.
func (a *Agent) once(ctx context.Context) error {
	if err := a.vpp.WaitConnected(ctx); err != nil {
		return fmt.Errorf("wait for VPP at %s: %w", a.cfg.VPPSocket, err)
	}
	kvs, _, err := a.st.List(ctx, schema.ContainerPrefix(a.cfg.Host, a.container))
	if err != nil {
		return err
	}
	var errs []error
	n := 0
	for _, kv := range kvs {
		if k, err := schema.ParseKey(kv.Key); err == nil && k.Kind == schema.KindContainerInterfaceKey {
			n++
			errs = append(errs, a.reconcile(ctx, kv.Key, &kv))
		}
	}
	if n == 0 {
		return fmt.Errorf("no interface intents for container %s on host %s (%s is empty): was the CNI ADD made with this container ID?",
			a.container, a.cfg.Host, schema.ContainerPrefix(a.cfg.Host, a.container))
	}
	// Status writes are asynchronous; the process ends after this.
	errs = append(errs, a.status.Flush(ctx))
	return errors.Join(errs...)
}

// reconcile converges one key, then keeps its interface's device-info
// file (DeviceInfoDir) as its status now says: written while the interface
// is ready in VPP, removed otherwise (gone, refused, not made yet).
func (a *Agent) reconcile(ctx context.Context, key string, kv *store.KV) error {
	if err := a.ifrec.Reconcile(ctx, key, kv); err != nil || a.cfg.DeviceInfoDir == "" {
		return err
	}
	k, err := schema.ParseKey(key)
	if err != nil || k.Kind != schema.KindContainerInterfaceKey {
		return nil
	}
	path := filepath.Join(a.cfg.DeviceInfoDir, k.Interface+".json")
	if kv == nil || !a.ready(schema.StatusKey(k)) {
		return deviceinfo.Remove(path)
	}
	ci, err := schema.DecodeAt[schema.ContainerInterface](k, kv.Value)
	if err != nil {
		return deviceinfo.Remove(path)
	}
	return deviceinfo.Write(path, deviceinfo.For(ci))
}

// sweepDeviceInfo removes the device-info files an earlier run left for
// interfaces the container no longer has (their status may be gone too,
// so no reconcile would); the first reconcile of each current one
// rewrites its file. It runs before the workers, on the first snapshot.
func (a *Agent) sweepDeviceInfo(log *slog.Logger) {
	if a.cfg.DeviceInfoDir == "" {
		return
	}
	current := map[string]bool{}
	for _, kv := range a.ifaces.List() {
		if k, err := schema.ParseKey(kv.Key); err == nil {
			current[k.Interface] = true
		}
	}
	if err := deviceinfo.Sweep(a.cfg.DeviceInfoDir, func(ifname string) bool { return current[ifname] }); err != nil {
		log.Warn("device-info files of gone interfaces not all removed", "dir", a.cfg.DeviceInfoDir, "err", err)
	}
}

// ready says the status at key, as this agent last set it, is ready.
func (a *Agent) ready(key string) bool {
	b, ok := a.status.Get(key)
	if !ok {
		return false
	}
	st, err := schema.DecodeAs[schema.InterfaceStatus](b)
	return err == nil && st.Ready
}

func (a *Agent) onEvent(ev store.Event) error {
	switch ev.Type {
	case store.Sync:
		var ifs []store.KV
		for _, kv := range ev.Snapshot {
			if k, err := schema.ParseKey(kv.Key); err == nil && k.Kind == schema.KindContainerInterfaceKey {
				ifs = append(ifs, kv)
			}
		}
		a.ifaces.Replace(ifs, ifreconcile.SweepKey)
	case store.Put, store.Delete:
		k, err := schema.ParseKey(ev.KV.Key)
		if err != nil || k.Kind != schema.KindContainerInterfaceKey {
			return nil
		}
		if ev.Type == store.Put {
			a.ifaces.Upsert(ev.KV)
		} else {
			a.ifaces.Delete(ev.KV.Key)
		}
	}
	return nil
}

// watchVPP re-applies everything after VPP (re)connects: a restarted VPP
// has lost its state, and a disconnect shows in the statuses.
func (a *Agent) watchVPP(ctx context.Context, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-a.vpp.Events():
			if !ok {
				return // the client was closed
			}
			log.Info("VPP connection changed", "event", ev.Type, "err", ev.Err)
			a.ifaces.Enqueue(ifreconcile.SweepKey)
			a.ifaces.EnqueueAll()
		}
	}
}

// interfaceSpec turns a container-side interface intent into what the
// container's VPP must hold.
func interfaceSpec(k schema.Key, owner string, value []byte) (vppstate.Spec, error) {
	ci, err := schema.DecodeAt[schema.ContainerInterface](k, value)
	if err != nil {
		return vppstate.Spec{}, err
	}
	if ci.Memif != nil && ci.Memif.Netns != "" {
		return vppstate.Spec{}, fmt.Errorf("container-side memif names netns %s: the container's VPP opens its socket in its own network namespace, never another", ci.Memif.Netns)
	}
	spec := vppstate.Spec{Owner: owner, Type: ci.Type, Memif: ci.Memif, Vhost: ci.Vhost, MTU: ci.MTU, MAC: ci.MAC, Routes: ci.Routes}
	for _, ip := range ci.IPs {
		spec.Addresses = append(spec.Addresses, ip.Address)
	}
	return spec, nil
}

// OnceTimeout bounds --once when the caller sets no deadline.
const OnceTimeout = 2 * time.Minute
