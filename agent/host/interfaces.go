package host

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	ifreconcile "github.com/uspace-io/uspace/agent/reconcile/interfaces"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/schema"
)

// interfaceSpec turns a host-side interface intent, or a tunnel or the
// uplink derived for networks that span hosts, into what VPP must hold.
func (a *Agent) interfaceSpec(owner string, value []byte) (vppstate.Spec, error) {
	hi, err := schema.DecodeAs[schema.HostInterface](value)
	if err != nil {
		// Intents are by far the most keys: only a value that is not one
		// is decoded again.
		return derivedSpec(owner, value, err)
	}
	spec := vppstate.Spec{Owner: owner, Type: hi.Type, Memif: hi.Memif, Vhost: hi.Vhost, MTU: hi.MTU, MAC: hi.MAC, Bridge: hi.Bridge}
	if n, ok := a.network(hi.Network); ok && spec.MTU == 0 {
		spec.MTU = n.MTU
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

// derivedSpec is the spec of a tunnel or the uplink; err is returned for
// any other value.
func derivedSpec(owner string, value []byte, err error) (vppstate.Spec, error) {
	o, derr := schema.Decode(value)
	if derr != nil {
		return vppstate.Spec{}, err
	}
	switch o := o.(type) {
	case *schema.Uplink:
		return vppstate.Spec{Owner: owner, Type: schema.IfTypeAFPacket, HostIf: o.HostIfName, Addresses: []string{o.Address}, MTU: o.MTU}, nil
	case *schema.Tunnel:
		if o.Error != "" {
			return vppstate.Spec{}, errors.New(o.Error)
		}
		src, serr := netip.ParseAddr(o.Src)
		dst, derr := netip.ParseAddr(o.Dst)
		if serr != nil || derr != nil {
			return vppstate.Spec{}, fmt.Errorf("tunnel to %s: %w", o.Peer, errors.Join(serr, derr))
		}
		return vppstate.Spec{Owner: owner, Type: schema.IfTypeVXLAN, Tunnel: &vppstate.Tunnel{Src: src, Dst: dst, VNI: o.VNI},
			Bridge: o.Bridge, SplitHorizon: tunnelSHG}, nil
	}
	return vppstate.Spec{}, err
}

// tunnelSHG is the split-horizon group of every tunnel: a frame from one
// peer host is never flooded to another, each host floods to all of them
// itself.
const tunnelSHG = 1
