package host

import (
	"github.com/uspace-io/uspace/agent/reconcile/crosshost"
	"github.com/uspace-io/uspace/schema"
)

// spanningMTU caps mtu, an interface's MTU by its intent or network (0:
// none), to what a network that spans hosts carries: a frame that fits the
// interface must still fit the uplink once tunnelled. An interface on a
// network that stays on this host keeps mtu.
func (a *Agent) spanningMTU(hi *schema.HostInterface, mtu uint32) uint32 {
	x := a.cross
	if x == nil || !crosshost.JoinsNetwork(hi) || (hi.VNI == 0 && a.networkVNI(hi.Network) == 0) {
		return mtu
	}
	if mtu == 0 || mtu > x.OverlayMTU() {
		return x.OverlayMTU()
	}
	return mtu
}
