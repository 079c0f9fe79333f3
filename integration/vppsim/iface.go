package vppsim

import (
	"strings"

	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_types"
)

func hSwInterfaceSetFlags(s *Sim, _ *client, req *interfaces.SwInterfaceSetFlags) *interfaces.SwInterfaceSetFlagsReply {
	w := s.st
	i := w.ifaces[uint32(req.SwIfIndex)]
	if i == nil {
		return &interfaces.SwInterfaceSetFlagsReply{Retval: rvInvalidSwIfIndex}
	}
	up := req.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0
	if up != i.adminUp {
		i.adminUp = up
		w.events = append(w.events, pendingEvent{swIfIndex: i.swIfIndex, flags: w.flags(i)})
		// As ip4/ip6_sw_interface_admin_up_down: an address's attached and
		// local routes exist only while the interface is up.
		for _, a := range i.addrs {
			if up {
				w.addInterfaceRoutes(i.swIfIndex, a)
			} else {
				w.delInterfaceRoutes(i.swIfIndex, a)
			}
		}
	}
	return &interfaces.SwInterfaceSetFlagsReply{}
}

// hSwInterfaceSetMtu sets the per-protocol MTUs [L3, IP4, IP6, MPLS] as
// given, like vnet_sw_interface_set_protocol_mtu().
func hSwInterfaceSetMtu(s *Sim, _ *client, req *interfaces.SwInterfaceSetMtu) *interfaces.SwInterfaceSetMtuReply {
	i := s.st.ifaces[uint32(req.SwIfIndex)]
	if i == nil {
		return &interfaces.SwInterfaceSetMtuReply{Retval: rvInvalidSwIfIndex}
	}
	var mtu [4]uint32
	copy(mtu[:], req.Mtu)
	i.mtu = mtu
	return &interfaces.SwInterfaceSetMtuReply{}
}

func hSwInterfaceSetMacAddress(s *Sim, _ *client, req *interfaces.SwInterfaceSetMacAddress) *interfaces.SwInterfaceSetMacAddressReply {
	i := s.st.ifaces[uint32(req.SwIfIndex)]
	if i == nil {
		return &interfaces.SwInterfaceSetMacAddressReply{Retval: rvInvalidSwIfIndex}
	}
	if !i.ethernet {
		return &interfaces.SwInterfaceSetMacAddressReply{Retval: rvUnimplemented}
	}
	if req.MacAddress[0]&1 != 0 {
		return &interfaces.SwInterfaceSetMacAddressReply{Retval: rvInvalidValue} // multicast
	}
	i.mac = req.MacAddress
	return &interfaces.SwInterfaceSetMacAddressReply{}
}

// hSwInterfaceAddDelAddress follows ip4/ip6_add_del_interface_address():
// an address that overlaps one already configured in the FIB (including the
// very same address) is ADDRESS_IN_USE, except further addresses of the
// same prefix length on the same interface; deleting an address the
// interface does not have is ADDRESS_NOT_FOUND_FOR_INTERFACE.
func hSwInterfaceAddDelAddress(s *Sim, _ *client, req *interfaces.SwInterfaceAddDelAddress) *interfaces.SwInterfaceAddDelAddressReply {
	w := s.st
	i := w.ifaces[uint32(req.SwIfIndex)]
	if i == nil {
		return &interfaces.SwInterfaceAddDelAddressReply{Retval: rvInvalidSwIfIndex}
	}
	if req.DelAll {
		for _, a := range i.addrs {
			w.delInterfaceRoutes(i.swIfIndex, a)
		}
		i.addrs = nil
		return &interfaces.SwInterfaceAddDelAddressReply{}
	}
	p, ok := prefixFromAPI(ip_types.Prefix(req.Prefix))
	if !ok {
		return &interfaces.SwInterfaceAddDelAddressReply{Retval: rvInvalidArgument}
	}
	if !req.IsAdd {
		for k, a := range i.addrs {
			if a == p {
				i.addrs = append(i.addrs[:k], i.addrs[k+1:]...)
				w.delInterfaceRoutes(i.swIfIndex, p)
				return &interfaces.SwInterfaceAddDelAddressReply{}
			}
		}
		return &interfaces.SwInterfaceAddDelAddressReply{Retval: rvAddressNotFound}
	}
	for _, j := range w.ifaces {
		for _, x := range j.addrs {
			if x.Addr().Is4() != p.Addr().Is4() {
				continue
			}
			if !(x.Contains(p.Addr()) || p.Contains(x.Addr())) {
				continue
			}
			if j == i && x.Bits() == p.Bits() && x.Addr() != p.Addr() {
				continue // more addresses of one prefix on one interface
			}
			return &interfaces.SwInterfaceAddDelAddressReply{Retval: rvAddressInUse}
		}
	}
	for _, a := range i.addrs {
		if a == p {
			return &interfaces.SwInterfaceAddDelAddressReply{Retval: rvDuplicateIfAddress}
		}
	}
	i.addrs = append(i.addrs, p)
	if i.adminUp {
		w.addInterfaceRoutes(i.swIfIndex, p)
	}
	return &interfaces.SwInterfaceAddDelAddressReply{}
}

func truncTag(t string) string {
	if i := strings.IndexByte(t, 0); i >= 0 {
		t = t[:i]
	}
	if len(t) > 63 {
		t = t[:63]
	}
	return t
}

func hSwInterfaceTagAddDel(s *Sim, _ *client, req *interfaces.SwInterfaceTagAddDel) *interfaces.SwInterfaceTagAddDelReply {
	i := s.st.ifaces[uint32(req.SwIfIndex)]
	if i == nil {
		return &interfaces.SwInterfaceTagAddDelReply{Retval: rvInvalidSwIfIndex}
	}
	if req.IsAdd {
		tag := truncTag(req.Tag)
		if tag == "" {
			return &interfaces.SwInterfaceTagAddDelReply{Retval: rvInvalidValue}
		}
		i.tag = tag
	} else {
		i.tag = ""
	}
	return &interfaces.SwInterfaceTagAddDelReply{}
}

func (s *Sim) ifDetails(i *iface) *interfaces.SwInterfaceDetails {
	return &interfaces.SwInterfaceDetails{
		SwIfIndex:        interface_types.InterfaceIndex(i.swIfIndex),
		SupSwIfIndex:     i.swIfIndex,
		L2Address:        i.mac,
		Flags:            s.st.flags(i),
		Type:             interface_types.IF_API_TYPE_HARDWARE,
		LinkMtu:          i.linkMtu,
		Mtu:              append([]uint32(nil), i.mtu[:]...),
		InterfaceName:    i.name,
		InterfaceDevType: i.kind.devType(),
		Tag:              i.tag,
	}
}

// hSwInterfaceDump: sw_if_index ~0 dumps all (GoVPP's zero value 0 asks for
// local0 only); name_filter is a case-insensitive substring match.
func hSwInterfaceDump(s *Sim, _ *client, req *interfaces.SwInterfaceDump) []*interfaces.SwInterfaceDetails {
	w := s.st
	if idx := uint32(req.SwIfIndex); idx != invalidIndex {
		if i := w.ifaces[idx]; i != nil {
			return []*interfaces.SwInterfaceDetails{s.ifDetails(i)}
		}
		return nil
	}
	var out []*interfaces.SwInterfaceDetails
	filter := strings.ToLower(req.NameFilter)
	for _, i := range w.sortedIfaces() {
		if req.NameFilterValid && !strings.Contains(strings.ToLower(i.name), filter) {
			continue
		}
		out = append(out, s.ifDetails(i))
	}
	return out
}

func hWantInterfaceEvents(s *Sim, c *client, req *interfaces.WantInterfaceEvents) *interfaces.WantInterfaceEventsReply {
	c.wantEvents = req.EnableDisable != 0
	c.eventPID = req.PID
	return &interfaces.WantInterfaceEventsReply{}
}
