package host

import (
	"context"

	"github.com/uspace-io/uspace/agent/ifsync"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/schema"
)

// interfaceSpec turns a host-side interface intent into what VPP must hold.
func (a *Agent) interfaceSpec(owner string, value []byte) (vppstate.Spec, error) {
	hi, err := schema.DecodeAs[schema.HostInterface](value)
	if err != nil {
		return vppstate.Spec{}, err
	}
	spec := vppstate.Spec{Owner: owner, Type: hi.Type, Memif: hi.Memif, Vhost: hi.Vhost, MTU: hi.MTU, MAC: hi.MAC, Bridge: hi.Bridge}
	if n, ok := a.network(hi.Network); ok && spec.MTU == 0 {
		spec.MTU = n.MTU
	}
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
			a.ifaces.Enqueue(ifsync.SweepKey)
			a.ifaces.EnqueueAll()
		case <-a.vpp.InterfaceEvents():
			a.ifaces.Enqueue(ifsync.DriftKey)
		}
	}
}
