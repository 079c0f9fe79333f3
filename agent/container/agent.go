// Package container is the container agent: it runs beside a container's
// own VPP, watches that container's intents in etcd and converges the
// container side of each interface, writing back what it applied. It
// replaces vpp-app, which polled JSON files in a bind-mounted directory.
package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/uspace-io/uspace/agent/controller"
	"github.com/uspace-io/uspace/agent/ifsync"
	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
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
	// Once applies the current intents and returns (init containers).
	Once bool
}

type Agent struct {
	cfg       Config
	st        *store.Client
	log       *slog.Logger
	container string
	vpp       *vpp.Client
	ifsync    *ifsync.Reconciler
	status    *controller.StatusWriter
	ifaces    *controller.Controller
}

func New(cfg Config, st *store.Client, log *slog.Logger) *Agent {
	return &Agent{cfg: cfg, st: st, log: log, status: controller.NewStatusWriter(st)}
}

// Run converges until ctx ends (nil after a clean shutdown) or, with Once,
// until the current intents are applied.
func (a *Agent) Run(ctx context.Context) error {
	id, err := a.cfg.Identity.Discover(ctx, a.st, a.cfg.Host)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := schema.ValidateContainerID("container", id); err != nil {
		return err
	}
	a.container = id
	a.log = a.log.With("container", id)
	a.log.Info("serving container", "host", a.cfg.Host)

	// The client reconnects with backoff: VPP may start after the agent.
	a.vpp = vpp.Dial(vpp.Config{Socket: a.cfg.VPPSocket, ClientName: "uspace-container-agent", Logger: a.log})
	defer a.vpp.Close()
	a.ifsync = &ifsync.Reconciler{VS: vppstate.NewCache(a.vpp, a.cfg.SharedDir, a.log), Status: a.status, Spec: interfaceSpec}
	if _, err := a.status.Load(ctx, schema.StatusContainerPrefix(a.cfg.Host, id)); err != nil {
		return err
	}
	if a.cfg.Once {
		return a.once(ctx)
	}

	a.ifaces = controller.New("container-interfaces", a.ifsync.Reconcile, controller.NewMetrics(prometheus.NewRegistry()), a.log)
	a.ifsync.Desired = a.ifaces.List
	errc := make(chan error, 1)
	go func() { errc <- a.st.ListWatch(ctx, schema.ContainerPrefix(a.cfg.Host, id), a.onEvent) }()
	go a.watchVPP(ctx)
	select {
	case <-a.ifaces.Synced():
	case err := <-errc:
		return ignoreCanceled(err)
	}
	// Statuses without an intent: the interface went while we were away.
	for _, k := range a.status.Keys() {
		if pk, err := schema.ParseKey(k); err == nil {
			a.ifaces.Enqueue(pk.IntentOf().String())
		}
	}
	done := make(chan struct{})
	go func() { a.ifaces.Run(ctx, 1); close(done) }()
	select {
	case <-ctx.Done():
		<-done
		return nil
	case err := <-errc:
		<-done
		return ignoreCanceled(err)
	}
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
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
	for _, kv := range kvs {
		if k, err := schema.ParseKey(kv.Key); err == nil && k.Kind == schema.KindContainerInterfaceKey {
			errs = append(errs, a.ifsync.Reconcile(ctx, kv.Key, &kv))
		}
	}
	// Status writes are asynchronous; the process ends after this.
	errs = append(errs, a.status.Flush(ctx))
	return errors.Join(errs...)
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
		a.ifaces.Replace(ifs, ifsync.SweepKey)
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
func (a *Agent) watchVPP(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-a.vpp.Events():
			a.log.Info("VPP connection changed", "event", ev.Type, "err", ev.Err)
			a.ifaces.Enqueue(ifsync.SweepKey)
			a.ifaces.EnqueueAll()
		}
	}
}

// interfaceSpec turns a container-side interface intent into what the
// container's VPP must hold.
func interfaceSpec(owner string, value []byte) (vppstate.Spec, error) {
	ci, err := schema.DecodeAs[schema.ContainerInterface](value)
	if err != nil {
		return vppstate.Spec{}, err
	}
	spec := vppstate.Spec{Owner: owner, Type: ci.Type, Memif: ci.Memif, Vhost: ci.Vhost, MTU: ci.MTU, MAC: ci.MAC, Routes: ci.Routes}
	for _, ip := range ci.IPs {
		spec.Addresses = append(spec.Addresses, ip.Address)
	}
	return spec, nil
}

// OnceTimeout bounds --once when the caller sets no deadline.
const OnceTimeout = 2 * time.Minute
