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
	vs, err := a.vs.Get(ctx)
	if err != nil {
		err = fmt.Errorf("VPP at %s: %w", a.cfg.VPPSocket, err)
		if kv != nil {
			a.reportInterface(ctx, sk, kv.ModRevision, 0, nil, err)
		}
		return err
	}
	owner := vppstate.Owner(key)
	if kv == nil {
		if err := vs.Remove(ctx, owner); err != nil {
			return a.vs.Failed(fmt.Errorf("remove interface %s/%s: %w", k.Container, k.Interface, err))
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
		err = a.vs.Failed(fmt.Errorf("apply interface %s/%s: %w", hi.Container, hi.Name, err))
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

// sweep removes what uspace owns in VPP but no intent wants.
func (a *Agent) sweep(ctx context.Context) error {
	return a.vs.Sweep(ctx, a.ifaces.Keys())
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
