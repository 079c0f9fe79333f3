package host

import (
	"context"
	"fmt"

	ifreconcile "github.com/uspace-io/uspace/agent/reconcile/interfaces"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/schema"
)

// interfaceSpec turns the value at k into what VPP must hold: a host-side
// interface intent, or a tunnel or the uplink derived for networks that
// span hosts. Each kind of key is decoded as its own kind of value only: a
// Tunnel or an Uplink put under interfaces/ by anyone with this host's
// identity is refused, never made.
func (a *Agent) interfaceSpec(k schema.Key, owner string, value []byte) (vppstate.Spec, error) {
	switch k.Kind {
	case schema.KindTunnelKey, schema.KindUplinkKey:
		if a.cross == nil {
			return vppstate.Spec{}, fmt.Errorf("%s: this host does not join networks that span hosts", k)
		}
		return a.cross.Spec(k, owner, value)
	}
	hi, err, ok := a.predecoded.take(owner, value)
	if !ok {
		hi, err = schema.DecodeAt[schema.HostInterface](k, value)
	}
	if err != nil {
		return vppstate.Spec{}, err
	}
	spec := vppstate.Spec{Owner: owner, Type: hi.Type, Memif: hi.Memif, Vhost: hi.Vhost, MTU: hi.MTU, MAC: hi.MAC, Bridge: hi.Bridge}
	if hi.Network == "" {
		return spec, nil
	}
	n, ok, err := a.network(hi.Network)
	if err != nil {
		return vppstate.Spec{}, err
	}
	if ok && spec.MTU == 0 {
		spec.MTU = n.MTU
	}
	if a.cross != nil {
		if err := a.cross.Refusal(hi.Network); err != nil {
			return vppstate.Spec{}, err
		}
	}
	spec.MTU = a.spanningMTU(hi, spec.MTU)
	return spec, nil
}

// watchDataplanes re-applies everything after VPP or SPDK (re)connects:
// a restarted dataplane has lost its state. VPP's interface events (one
// of the agent's interfaces deleted or set down behind its back) queue
// the drift check.
func (a *Agent) watchDataplanes(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-a.vpp.Events():
			if !ok {
				return // the client was closed
			}
			a.log.Info("VPP connection changed", "event", ev.Type, "version", ev.Version.Version, "restarted", ev.Restarted, "err", ev.Err)
			a.ifaces.Enqueue(ifreconcile.SweepKey)
			a.ifaces.EnqueueAll()
		case <-a.vpp.InterfaceEvents():
			a.ifaces.Enqueue(ifreconcile.DriftKey)
		}
	}
}
