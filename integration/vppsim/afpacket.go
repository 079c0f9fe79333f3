package vppsim

import (
	"net"

	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/interface_types"
)

type afPacketIf struct {
	hostIfName string
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
