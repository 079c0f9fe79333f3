package vppsim

import (
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
)

type bdArgs struct {
	id                                               uint32
	flood, uuFlood, forward, learn, arpTerm, arpUfwd bool
	macAge                                           uint8
	tag                                              string
	isAdd                                            bool
}

// bdAddDel follows bd_add_del() in VPP's l2_bd.c. bd_id ~0 on add picks an
// unused id at random.
func (w *world) bdAddDel(a bdArgs) (int32, uint32) {
	id := a.id
	if id == invalidIndex {
		if !a.isAdd {
			return rvNoSuchEntry, id
		}
		for {
			id = w.rng.Uint32() & l2BDIDMax
			if id != 0 && w.bds[id] == nil {
				break
			}
		}
	}
	if a.isAdd {
		if id == 0 || w.bds[id] != nil {
			return rvBDAlreadyExists, id
		}
		if id > l2BDIDMax {
			return rvBDIDExceedMax, id
		}
		w.bdSeq++
		w.bds[id] = &bridgeDomain{
			id: id, seq: w.bdSeq, flood: a.flood, uuFlood: a.uuFlood, forward: a.forward,
			learn: a.learn, arpTerm: a.arpTerm, arpUfwd: a.arpUfwd, macAge: a.macAge, tag: truncTag(a.tag),
		}
		return rvOK, id
	}
	if id == 0 {
		return rvBDNotModifiable, id
	}
	bd := w.bds[id]
	if bd == nil {
		return rvNoSuchEntry, id
	}
	if len(bd.members) > 0 {
		return rvBDInUse, id
	}
	delete(w.bds, id)
	return rvOK, id
}

func hBridgeDomainAddDel(s *Sim, _ *client, req *l2.BridgeDomainAddDel) *l2.BridgeDomainAddDelReply {
	rv, _ := s.st.bdAddDel(bdArgs{
		id: req.BdID, flood: req.Flood, uuFlood: req.UuFlood, forward: req.Forward, learn: req.Learn,
		arpTerm: req.ArpTerm, arpUfwd: req.ArpUfwd, macAge: req.MacAge, tag: req.BdTag, isAdd: req.IsAdd,
	})
	return &l2.BridgeDomainAddDelReply{Retval: rv}
}

func hBridgeDomainAddDelV2(s *Sim, _ *client, req *l2.BridgeDomainAddDelV2) *l2.BridgeDomainAddDelV2Reply {
	rv, id := s.st.bdAddDel(bdArgs{
		id: req.BdID, flood: req.Flood, uuFlood: req.UuFlood, forward: req.Forward, learn: req.Learn,
		arpTerm: req.ArpTerm, arpUfwd: req.ArpUfwd, macAge: req.MacAge, tag: req.BdTag, isAdd: req.IsAdd,
	})
	return &l2.BridgeDomainAddDelV2Reply{Retval: rv, BdID: id}
}

func bdDetails(bd *bridgeDomain) *l2.BridgeDomainDetails {
	d := &l2.BridgeDomainDetails{
		BdID: bd.id, Flood: bd.flood, UuFlood: bd.uuFlood, Forward: bd.forward, Learn: bd.learn,
		ArpTerm: bd.arpTerm, ArpUfwd: bd.arpUfwd, MacAge: bd.macAge, BdTag: bd.tag,
		BviSwIfIndex:   interface_types.InterfaceIndex(invalidIndex),
		UuFwdSwIfIndex: interface_types.InterfaceIndex(invalidIndex),
		NSwIfs:         uint32(len(bd.members)),
	}
	for _, m := range bd.members {
		d.SwIfDetails = append(d.SwIfDetails, l2.BridgeDomainSwIf{SwIfIndex: interface_types.InterfaceIndex(m.swIfIndex), Shg: m.shg})
	}
	return d
}

// hBridgeDomainDump: bd_id 0 (the default BD) is never dumped; bd_id ~0
// dumps all; a valid sw_if_index restricts the dump to that interface's BD.
func hBridgeDomainDump(s *Sim, _ *client, req *l2.BridgeDomainDump) []*l2.BridgeDomainDetails {
	w := s.st
	if req.BdID == 0 {
		return nil
	}
	if idx := uint32(req.SwIfIndex); idx != invalidIndex {
		i := w.ifaces[idx]
		if i == nil || i.bdID == 0 || (req.BdID != invalidIndex && req.BdID != i.bdID) {
			return nil
		}
		if bd := w.bds[i.bdID]; bd != nil {
			return []*l2.BridgeDomainDetails{bdDetails(bd)}
		}
		return nil
	}
	var out []*l2.BridgeDomainDetails
	for _, bd := range w.sortedBDs() {
		if req.BdID != invalidIndex && req.BdID != bd.id {
			continue
		}
		out = append(out, bdDetails(bd))
	}
	return out
}

// hSwInterfaceSetL2Bridge: like VPP, enabling into a bridge domain that
// does not exist creates it with default flags (learn, forward, flood,
// uu-flood on; arp-term off). Disabling ignores bd_id.
func hSwInterfaceSetL2Bridge(s *Sim, _ *client, req *l2.SwInterfaceSetL2Bridge) *l2.SwInterfaceSetL2BridgeReply {
	w := s.st
	i := w.ifaces[uint32(req.RxSwIfIndex)]
	if i == nil {
		return &l2.SwInterfaceSetL2BridgeReply{Retval: rvInvalidSwIfIndex}
	}
	if !req.Enable {
		if i.bdID != 0 {
			w.bdRemoveMember(i.bdID, i.swIfIndex)
			i.bdID, i.shg = 0, 0
		}
		return &l2.SwInterfaceSetL2BridgeReply{}
	}
	if req.BdID > l2BDIDMax {
		return &l2.SwInterfaceSetL2BridgeReply{Retval: rvBDIDExceedMax}
	}
	bd := w.bds[req.BdID]
	if bd == nil {
		if req.BdID == 0 {
			// bd_index 0 always exists in VPP but is not a usable bridge.
			return &l2.SwInterfaceSetL2BridgeReply{Retval: rvBDNotModifiable}
		}
		w.bdSeq++
		bd = &bridgeDomain{id: req.BdID, seq: w.bdSeq, flood: true, uuFlood: true, forward: true, learn: true}
		w.bds[req.BdID] = bd
	}
	if i.bdID != 0 {
		w.bdRemoveMember(i.bdID, i.swIfIndex)
	}
	bd.members = append(bd.members, bdMember{swIfIndex: i.swIfIndex, shg: req.Shg})
	i.bdID, i.shg = bd.id, req.Shg
	return &l2.SwInterfaceSetL2BridgeReply{}
}
