package vppsim

import (
	"fmt"
	"net"
	"net/netip"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/vxlan"
)

// af_packet and VXLAN, as VPP 25.02's af_packet and vxlan plugins answer
// (measured side by side by integration/realdp's differential test).
const (
	rvSyscallError1Afp = int32(api.SYSCALL_ERROR_1)   // -11: af_packet_delete of a name without interface
	rvInvalidInterface = int32(api.INVALID_INTERFACE) // -71: no Linux interface of that name
	rvTunnelExist      = int32(api.TUNNEL_EXIST)      // -75
	rvSameSrcDst       = int32(api.SAME_SRC_DST)      // -82
	rvInvalidDecapNext = int32(api.INVALID_DECAP_NEXT)
	rvInstanceInUse    = int32(api.INSTANCE_IN_USE) // -147
	vxlanDefaultPort   = 4789
	vxlanDecapL2Input  = 1 // VXLAN_INPUT_NEXT_L2_INPUT; 0 is error-drop
)

type afPacketIf struct {
	hostIfName string
}

type vxlanKey struct {
	src, dst netip.Addr
	vni      uint32
	dstPort  uint16
	vrf      uint32
}

type vxlanIf struct {
	key      vxlanKey
	instance uint32
	srcPort  uint16
	decap    uint32
}

// tunnels indexes the af_packet interfaces by Linux name and the VXLAN
// tunnels by key and instance. The zero value is empty.
type tunnels struct {
	afpByName map[string]*iface
	vxlanKeys map[vxlanKey]*iface
	instances map[uint32]*iface
}

func (t *tunnels) init() {
	if t.afpByName == nil {
		t.afpByName = map[string]*iface{}
		t.vxlanKeys = map[vxlanKey]*iface{}
		t.instances = map[uint32]*iface{}
	}
}

// forget drops a deleted interface from the indexes.
func (t *tunnels) forget(i *iface) {
	if i.afp != nil && t.afpByName != nil {
		delete(t.afpByName, i.afp.hostIfName)
	}
	if i.vxlan != nil && t.vxlanKeys != nil {
		delete(t.vxlanKeys, i.vxlan.key)
		delete(t.instances, i.vxlan.instance)
	}
}

// hAfPacketCreateV3 follows af_packet_create_if(): the Linux interface must
// exist in the simulator's network namespace (-71, sw_if_index 0 as VPP
// leaves it), one interface per Linux name (-79 with the existing index).
// The interface is named host-<name>, comes up link-up and admin-down,
// MTU 9000; its MAC is hw_addr as given (zeros included) unless
// use_random_hw_addr. The Linux interface itself is not touched.
func hAfPacketCreateV3(s *Sim, _ *client, req *af_packet.AfPacketCreateV3) *af_packet.AfPacketCreateV3Reply {
	w := s.st
	w.tun.init()
	name := truncTag(req.HostIfName)
	if i := w.tun.afpByName[name]; i != nil {
		return &af_packet.AfPacketCreateV3Reply{Retval: rvIfAlreadyExists, SwIfIndex: interface_types.InterfaceIndex(i.swIfIndex)}
	}
	if name == "" {
		return &af_packet.AfPacketCreateV3Reply{Retval: rvInvalidInterface}
	}
	if _, err := net.InterfaceByName(name); err != nil {
		return &af_packet.AfPacketCreateV3Reply{Retval: rvInvalidInterface}
	}
	if req.Mode != af_packet.AF_PACKET_API_MODE_ETHERNET && req.Mode != af_packet.AF_PACKET_API_MODE_IP {
		return &af_packet.AfPacketCreateV3Reply{Retval: rvInvalidValue}
	}
	i := &iface{
		swIfIndex: w.allocSwIfIndex(),
		name:      "host-" + name,
		kind:      kindAFPacket,
		ethernet:  req.Mode == af_packet.AF_PACKET_API_MODE_ETHERNET,
		linkUp:    true,
		linkMtu:   defaultMTU,
		mtu:       [4]uint32{defaultMTU, 0, 0, 0},
		afp:       &afPacketIf{hostIfName: name},
	}
	if i.ethernet {
		if req.UseRandomHwAddr {
			i.mac = w.randomMAC()
		} else {
			i.mac = req.HwAddr
		}
	}
	w.ifaces[i.swIfIndex] = i
	w.events = append(w.events, pendingEvent{swIfIndex: i.swIfIndex, flags: w.flags(i)})
	w.tun.afpByName[name] = i
	return &af_packet.AfPacketCreateV3Reply{SwIfIndex: interface_types.InterfaceIndex(i.swIfIndex)}
}

// hAfPacketDelete: a name without an interface is SYSCALL_ERROR_1 (-11),
// as af_packet_delete_if() answers; the interface leaves its bridge domain.
func hAfPacketDelete(s *Sim, _ *client, req *af_packet.AfPacketDelete) *af_packet.AfPacketDeleteReply {
	w := s.st
	i := w.tun.afpByName[truncTag(req.HostIfName)]
	if i == nil {
		return &af_packet.AfPacketDeleteReply{Retval: rvSyscallError1Afp}
	}
	w.removeIface(i)
	return &af_packet.AfPacketDeleteReply{}
}

func hAfPacketDump(s *Sim, _ *client, _ *af_packet.AfPacketDump) []*af_packet.AfPacketDetails {
	var out []*af_packet.AfPacketDetails
	for _, i := range s.st.sortedIfaces() {
		if i.afp != nil {
			out = append(out, &af_packet.AfPacketDetails{SwIfIndex: interface_types.InterfaceIndex(i.swIfIndex), HostIfName: i.afp.hostIfName})
		}
	}
	return out
}

func addrFromAPI(a ip_types.Address) netip.Addr {
	switch a.Af {
	case ip_types.ADDRESS_IP4:
		return netip.AddrFrom4(a.Un.GetIP4())
	case ip_types.ADDRESS_IP6:
		return netip.AddrFrom16(a.Un.GetIP6())
	}
	return netip.Addr{}
}

// hVxlanAddDelTunnelV3 follows vl_api_vxlan_add_del_tunnel_v3_t_handler and
// vnet_vxlan_add_del_tunnel(): only table 0 exists (-3); src = dst is -82;
// a multicast destination needs a valid mcast interface (-2); the tunnel
// key is (src, dst, vni, port, table): adding one that exists is -75 and
// deleting one that does not is -6, both with sw_if_index ~0. An explicit
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
	key := vxlanKey{src: src, dst: dst, vni: req.Vni, dstPort: dstPort, vrf: req.EncapVrfID}
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
		vxlan:     &vxlanIf{key: key, instance: inst, srcPort: srcPort, decap: decap},
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
			SrcPort:        v.srcPort,
			DstPort:        v.key.dstPort,
			McastSwIfIndex: interface_types.InterfaceIndex(invalidIndex),
			EncapVrfID:     v.key.vrf,
			DecapNextIndex: v.decap,
			Vni:            v.key.vni,
		})
	}
	return out
}
