package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// sweepKey is queued with the interface keys; its reconcile reloads VPP's
// state and removes what uspace owns but no intent wants. It runs on the
// same worker as the interfaces, so it never races one of them.
const sweepKey = "sweep"

// reconcileInterface makes host VPP match one host-side interface intent.
func (a *Agent) reconcileInterface(ctx context.Context, key string, kv *store.KV) error {
	if key == sweepKey {
		return a.sweep(ctx)
	}
	k, err := schema.ParseKey(key)
	if err != nil {
		return nil
	}
	sk := schema.StatusKey(k)
	vs, err := a.vppState(ctx)
	if err != nil {
		if kv != nil {
			a.reportInterface(ctx, sk, kv.ModRevision, 0, nil, err)
		}
		return err
	}
	owner := vppstate.Owner(key)
	if kv == nil {
		if err := vs.Remove(ctx, owner); err != nil {
			return a.dataplaneErr(fmt.Errorf("remove interface %s/%s: %w", k.Container, k.Interface, err))
		}
		return a.status.Delete(ctx, sk)
	}
	hi, err := schema.DecodeAs[schema.HostInterface](kv.Value)
	if err != nil {
		return a.reportInterface(ctx, sk, kv.ModRevision, 0, nil, err)
	}
	spec := vppstate.Spec{Owner: owner, Type: hi.Type, Memif: hi.Memif, Vhost: hi.Vhost, MTU: hi.MTU, MAC: hi.MAC, Bridge: hi.Bridge}
	if n, ok := a.network(hi.Network); ok && spec.MTU == 0 {
		spec.MTU = n.MTU
	}
	idx, err := vs.Ensure(ctx, spec)
	if err != nil {
		err = a.dataplaneErr(fmt.Errorf("apply interface %s/%s: %w", hi.Container, hi.Name, err))
		return errors.Join(err, a.reportInterface(ctx, sk, kv.ModRevision, idx, hi, err))
	}
	return a.reportInterface(ctx, sk, kv.ModRevision, idx, hi, nil)
}

func (a *Agent) reportInterface(ctx context.Context, sk string, rev int64, idx uint32, hi *schema.HostInterface, applyErr error) error {
	st := &schema.InterfaceStatus{ObservedRevision: rev, SwIfIndex: idx, Ready: applyErr == nil}
	if applyErr != nil {
		st.Error = applyErr.Error()
	}
	if hi != nil {
		st.Bridge = hi.Bridge
		switch {
		case hi.Memif != nil:
			st.SocketPath = hi.Memif.SocketPath
		case hi.Vhost != nil:
			st.SocketPath = hi.Vhost.SocketPath
		}
	}
	return a.status.Put(ctx, sk, st)
}

// dataplaneErr drops the cached VPP view after a failed call: the next
// reconcile reloads it rather than trust a view that may be stale.
func (a *Agent) dataplaneErr(err error) error {
	a.vs = nil
	return err
}

// vppState returns the cached view of VPP, loading it when needed.
func (a *Agent) vppState(ctx context.Context) (*vppstate.State, error) {
	if a.vs != nil {
		return a.vs, nil
	}
	if !a.vpp.Connected() {
		return nil, fmt.Errorf("VPP at %s is not connected", a.cfg.VPPSocket)
	}
	vs, err := vppstate.Load(ctx, a.vpp, a.cfg.SharedDir)
	if err != nil {
		return nil, fmt.Errorf("read VPP state: %w", err)
	}
	a.vs = vs
	return vs, nil
}

// sweep reloads VPP's state and removes interfaces and bridge domains that
// uspace created but no intent wants any more (deleted while the agent was
// down, or left by a crash mid-way).
func (a *Agent) sweep(ctx context.Context) error {
	a.vs = nil
	vs, err := a.vppState(ctx)
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, key := range a.ifaces.Keys() {
		wanted[vppstate.Owner(key)] = true
	}
	var errs []error
	for _, owner := range vs.Owners() {
		if !wanted[owner] {
			a.log.Info("removing orphan interface", "owner", owner)
			errs = append(errs, vs.Remove(ctx, owner))
		}
	}
	errs = append(errs, vs.PruneBridges(ctx))
	if err := errors.Join(errs...); err != nil {
		return a.dataplaneErr(fmt.Errorf("sweep orphans: %w", err))
	}
	return nil
}

// watchDataplanes re-applies everything after VPP or SPDK (re)connects:
// a restarted dataplane has lost its state.
func (a *Agent) watchDataplanes(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-a.vpp.Events():
			a.log.Info("VPP connection changed", "event", ev.Type, "version", ev.Version.Version, "restarted", ev.Restarted, "err", ev.Err)
			a.ifaces.Enqueue(sweepKey)
			a.ifaces.EnqueueAll()
		}
	}
}
