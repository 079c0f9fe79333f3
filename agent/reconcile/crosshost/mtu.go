package crosshost

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/uspace-io/uspace/schema"
)

// vxlanOverhead is what a VXLAN tunnel adds to a frame of a network that
// spans hosts: the frame's Ethernet header (14) and VXLAN (8), UDP (8)
// and IP (20 for IPv4, 40 for IPv6) headers around it.
func vxlanOverhead(underlay netip.Addr) uint32 {
	if underlay.Is4() {
		return 50
	}
	return 70
}

// ReadUplink reads the uplink's Linux MTU and MAC (readLink) once, at
// start, as flannel does for the MTU: a change takes effect when the agent
// restarts.
func (x *Mesh) ReadUplink(netns string) error {
	mtu, mac, err := readLink(x.cfg.Uplink, netns)
	if err != nil {
		return err
	}
	x.uplinkMAC = mac
	return x.setUplinkMTU(mtu)
}

// readLink reads a Linux interface's MTU and MAC in the agent's own
// network namespace, or in netns (a path such as /var/run/netns/vpp) when
// VPP and the uplink live in another one. It asks the kernel over netlink,
// whose socket belongs to the namespace of the thread that opens it; sysfs
// would answer for the namespace it was mounted in.
func readLink(name, netns string) (uint32, net.HardwareAddr, error) {
	var li *net.Interface
	read := func(ns.NetNS) (err error) {
		li, err = net.InterfaceByName(name)
		return err
	}
	where := "the agent's network namespace"
	var err error
	if netns == "" {
		err = read(nil)
	} else {
		where = "network namespace " + netns
		err = ns.WithNetNSPath(netns, read)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read the MTU and MAC of --uplink %s in %s: %w", name, where, err)
	}
	return uint32(li.MTU), li.HardwareAddr, nil
}

// setUplinkMTU records the uplink's Linux MTU (linux), which the uplink in
// VPP gets, and derives the MTU of every interface of a network that spans
// hosts, less the tunnel's overhead. VPP takes no frame above
// schema.MaxMTU, so a larger MTU (a loopback's 65536) counts as that.
func (x *Mesh) setUplinkMTU(linux uint32) error {
	x.uplinkMTU = min(linux, schema.MaxMTU)
	x.overlayMTU = x.uplinkMTU - min(x.uplinkMTU, vxlanOverhead(x.underlay.Addr()))
	if x.overlayMTU < schema.MinMTU {
		return fmt.Errorf("--uplink %s has MTU %d: a network spanning hosts over it would have %d, below the least IP allows (%d)",
			x.cfg.Uplink, linux, x.overlayMTU, schema.MinMTU)
	}
	return nil
}

// OverlayMTU is the most a network spanning hosts carries over the uplink.
func (x *Mesh) OverlayMTU() uint32 { return x.overlayMTU }

// JoinsNetwork says whether an interface is a member of its network's
// bridge domain, which spans hosts when the network has a VNI.
func JoinsNetwork(hi *schema.HostInterface) bool {
	return hi.NetType == schema.NetTypeBridge && hi.Network != ""
}
