package vppsim

import (
	"fmt"
	"net/netip"

	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/vxlan"
)

type vxlanKey struct {
	src, dst netip.Addr
	vni      uint32
	srcPort  uint16 // the local port: VPP decapsulates by it
	vrf      uint32
}

type vxlanIf struct {
	key      vxlanKey
	instance uint32
	dstPort  uint16
	decap    uint32
}

// hVxlanAddDelTunnelV3 follows vl_api_vxlan_add_del_tunnel_v3_t_handler and
// vnet_vxlan_add_del_tunnel(): only table 0 exists (-3); src = dst is -82;
// a multicast destination needs a valid mcast interface (-2); the tunnel
// key is (src, dst, vni, source port, table), not the destination port:
// adding one that exists is -75 and deleting one that does not is -6,
// both with sw_if_index ~0. An explicit
// instance in use is -147; ~0 takes the lowest free one (vxlan_tunnel<n>).
// decap_next_index ~0 means l2-input (1). Ports 0 mean 4789. VPP creates
// the tunnel admin-up and link-up with a random MAC, MTU 9000; a delete
// answers the deleted tunnel's index.
func hVxlanAddDelTunnelV3(s *Sim, _ *client, req *vxlan.VxlanAddDelTunnelV3) *vxlan.VxlanAddDelTunnelV3Reply {
	w := s.st
	w.tun.init()
	fail := func(rv int32) *vxlan.VxlanAddDelTunnelV3Reply {
		return &vxlan.VxlanAddDelTunnelV3Reply{Retval: rv, SwIfIndex: interface_types.InterfaceIndex(invalidIndex)}
	}
	if req.EncapVrfID != 0 {
		return fail(rvNoSuchFib)
	}
	src, dst := addrFromAPI(req.SrcAddress), addrFromAPI(req.DstAddress)
	if src == dst {
		return fail(rvSameSrcDst)
	}
	if dst.IsMulticast() && w.ifaces[uint32(req.McastSwIfIndex)] == nil {
		return fail(rvInvalidSwIfIndex)
	}
	srcPort, dstPort := req.SrcPort, req.DstPort
	if srcPort == 0 {
		srcPort = vxlanDefaultPort
	}
	if dstPort == 0 {
		dstPort = vxlanDefaultPort
	}
	key := vxlanKey{src: src, dst: dst, vni: req.Vni, srcPort: srcPort, vrf: req.EncapVrfID}
	cur := w.tun.vxlanKeys[key]
	if !req.IsAdd {
		if cur == nil {
			return fail(rvNoSuchEntry)
		}
		w.removeIface(cur)
		return &vxlan.VxlanAddDelTunnelV3Reply{SwIfIndex: interface_types.InterfaceIndex(cur.swIfIndex)}
	}
	if cur != nil {
		return fail(rvTunnelExist)
	}
	decap := req.DecapNextIndex
	if decap == invalidIndex {
		decap = vxlanDecapL2Input
	}
	if decap > vxlanDecapL2Input {
		return fail(rvInvalidDecapNext)
	}
	inst := req.Instance
	if inst == invalidIndex {
		for inst = 0; w.tun.instances[inst] != nil; inst++ {
		}
	} else if w.tun.instances[inst] != nil {
		return fail(rvInstanceInUse)
	}
	i := &iface{
		swIfIndex: w.allocSwIfIndex(),
		name:      fmt.Sprintf("vxlan_tunnel%d", inst),
		kind:      kindVXLAN,
		ethernet:  true,
		adminUp:   true,
		linkUp:    true,
		linkMtu:   defaultMTU,
		mtu:       [4]uint32{defaultMTU, 0, 0, 0},
		mac:       w.randomMAC(),
		vxlan:     &vxlanIf{key: key, instance: inst, dstPort: dstPort, decap: decap},
	}
	w.ifaces[i.swIfIndex] = i
	w.events = append(w.events, pendingEvent{swIfIndex: i.swIfIndex, flags: w.flags(i)})
	w.tun.vxlanKeys[key] = i
	w.tun.instances[inst] = i
	return &vxlan.VxlanAddDelTunnelV3Reply{SwIfIndex: interface_types.InterfaceIndex(i.swIfIndex)}
}

// hVxlanTunnelV2Dump: sw_if_index ~0 dumps every tunnel, another index
// that tunnel (nothing for an index that is no tunnel).
func hVxlanTunnelV2Dump(s *Sim, _ *client, req *vxlan.VxlanTunnelV2Dump) []*vxlan.VxlanTunnelV2Details {
	var out []*vxlan.VxlanTunnelV2Details
	for _, i := range s.st.sortedIfaces() {
		if i.vxlan == nil || (uint32(req.SwIfIndex) != invalidIndex && uint32(req.SwIfIndex) != i.swIfIndex) {
			continue
		}
		v := i.vxlan
		out = append(out, &vxlan.VxlanTunnelV2Details{
			SwIfIndex:      interface_types.InterfaceIndex(i.swIfIndex),
			Instance:       v.instance,
			SrcAddress:     addrToAPI(v.key.src),
			DstAddress:     addrToAPI(v.key.dst),
			SrcPort:        v.key.srcPort,
			DstPort:        v.dstPort,
			McastSwIfIndex: interface_types.InterfaceIndex(invalidIndex),
			EncapVrfID:     v.key.vrf,
			DecapNextIndex: v.decap,
			Vni:            v.key.vni,
		})
	}
	return out
}
