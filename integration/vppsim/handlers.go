package vppsim

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/fib_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vpe"
)

// VPP's VNET_API_ERROR_* values used by the handlers (GoVPP's table).
const (
	rvOK                     = 0
	rvInvalidSwIfIndex       = int32(api.INVALID_SW_IF_INDEX)             // -2
	rvNoSuchFib              = int32(api.NO_SUCH_FIB)                     // -3
	rvNoSuchEntry            = int32(api.NO_SUCH_ENTRY)                   // -6
	rvInvalidValue           = int32(api.INVALID_VALUE)                   // -7
	rvUnimplemented          = int32(api.UNIMPLEMENTED)                   // -9
	rvSyscallError1          = int32(api.SYSCALL_ERROR_1)                 // -11
	rvSyscallError2          = int32(api.SYSCALL_ERROR_2)                 // -12
	rvSyscallError4          = int32(api.SYSCALL_ERROR_4)                 // -14
	rvNoMatchingInterface    = int32(api.NO_MATCHING_INTERFACE)           // -54
	rvAddressNotFound        = int32(api.ADDRESS_NOT_FOUND_FOR_INTERFACE) // -60
	rvSubifAlreadyExists     = int32(api.SUBIF_ALREADY_EXISTS)            // -68
	rvInvalidArgument        = int32(api.INVALID_ARGUMENT)                // -73
	rvUnexpectedIntfState    = int32(api.UNEXPECTED_INTF_STATE)           // -74
	rvIfAlreadyExists        = int32(api.IF_ALREADY_EXISTS)               // -79
	rvValueExist             = int32(api.VALUE_EXIST)                     // -81
	rvAddressInUse           = int32(api.ADDRESS_IN_USE)                  // -105
	rvEntryAlreadyExists     = int32(api.ENTRY_ALREADY_EXISTS)            // -116
	rvBDAlreadyExists        = int32(api.BD_ALREADY_EXISTS)               // -119
	rvBDInUse                = int32(api.BD_IN_USE)                       // -120
	rvBDNotModifiable        = int32(api.BD_NOT_MODIFIABLE)               // -121
	rvBDIDExceedMax          = int32(api.BD_ID_EXCEED_MAX)                // -122
	rvDuplicateIfAddress     = int32(api.DUPLICATE_IF_ADDRESS)            // -127
	l2BDIDMax                = 0xFFFFFF
	defaultMTU               = 9000
	defaultMemifRingSize     = 1024
	defaultMemifBufferSize   = 2048
	sunPathMax               = 108
	memifDefaultRxTxQueues   = 1
	vhostUserInterfacePrefix = "VirtualEthernet0/0/"
)

// allHandlers lists every request the simulator implements. The message
// table is built from it.
func allHandlers() []*handler {
	return []*handler{
		// memclnt
		onRequest(hControlPing),
		onRequest(hSockclntDelete),
		// vpe
		onRequest(hShowVersion),
		// memif
		onRequest(hMemifSocketFilenameAddDel),
		onRequest(hMemifSocketFilenameAddDelV2),
		onRequest(hMemifCreate),
		onRequest(hMemifCreateV2),
		onRequest(hMemifDelete),
		onDump(hMemifDump),
		onDump(hMemifSocketFilenameDump),
		// vhost_user
		onRequest(hCreateVhostUserIf),
		onRequest(hCreateVhostUserIfV2),
		onRequest(hDeleteVhostUserIf),
		onDump(hSwInterfaceVhostUserDump),
		// l2
		onRequest(hBridgeDomainAddDel),
		onRequest(hBridgeDomainAddDelV2),
		onDump(hBridgeDomainDump),
		onRequest(hSwInterfaceSetL2Bridge),
		// interface
		onRequest(hSwInterfaceSetFlags),
		onRequest(hSwInterfaceSetMtu),
		onRequest(hSwInterfaceSetMacAddress),
		onRequest(hSwInterfaceAddDelAddress),
		onRequest(hSwInterfaceTagAddDel),
		onDump(hSwInterfaceDump),
		withEvents(onRequest(hWantInterfaceEvents), (*interfaces.SwInterfaceEvent)(nil)),
		// ip
		onDump(hIPAddressDump),
		onRequest(hIPRouteAddDel),
		onDump(hIPRouteDump),
		// af_packet, vxlan (tunnels.go)
		onRequest(hAfPacketCreateV3),
		onRequest(hAfPacketDelete),
		onDump(hAfPacketDump),
		onRequest(hVxlanAddDelTunnelV3),
		onDump(hVxlanTunnelV2Dump),
	}
}

// withEvents lists an event message next to the request that enables it so
// the event gets a message id.
func withEvents(h *handler, ev api.Message) *handler {
	h.details = ev
	return h
}

// ---- memclnt / vpe ----

func hControlPing(s *Sim, c *client, _ *memclnt.ControlPing) *memclnt.ControlPingReply {
	return &memclnt.ControlPingReply{ClientIndex: c.index, VpePID: s.pid}
}

func hSockclntDelete(s *Sim, c *client, req *memclnt.SockclntDelete) *memclnt.SockclntDeleteReply {
	c.registered = false
	c.wantEvents = false
	return &memclnt.SockclntDeleteReply{Response: 0}
}

func hShowVersion(s *Sim, _ *client, _ *vpe.ShowVersion) *vpe.ShowVersionReply {
	return &vpe.ShowVersionReply{
		Program:        "vpe",
		Version:        s.opts.Version,
		BuildDate:      "vppsim",
		BuildDirectory: "/uspace/vppsim",
	}
}

// ---- memif ----

// memifSocketFilenameAddDel follows memif_socket_filename_add_del() in
// VPP's memif.c.
func (w *world) memifSocketFilenameAddDel(isAdd bool, id uint32, filename string) int32 {
	if (id == 0 && !isAdd) || id == invalidIndex {
		return rvInvalidArgument
	}
	if !isAdd {
		ms := w.sockets[id]
		if ms == nil {
			return rvInvalidArgument // don't delete non-existent entries
		}
		if ms.refCnt > 0 {
			return rvUnexpectedIntfState
		}
		delete(w.sockets, id)
		return rvOK
	}
	if filename == "" {
		return rvInvalidArgument
	}
	if !filepath.IsAbs(filename) {
		dir := filepath.Join(w.runtimeDir, filepath.Dir(filename))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return rvSyscallError1
		}
		filename = filepath.Join(w.runtimeDir, filename)
	}
	// An absolute filename in a missing directory is accepted, as VPP
	// 25.02 does: the master memif on it fails then (-14).
	if ms := w.sockets[id]; ms != nil {
		if ms.filename == filename {
			return rvOK // silently accept identical add
		}
		return rvEntryAlreadyExists
	}
	w.sockets[id] = &memifSocket{id: id, filename: filename}
	return rvOK
}

func (w *world) unusedSocketID() uint32 {
	for {
		id := w.rng.Uint32()
		if id == 0 || id == invalidIndex {
			continue
		}
		if _, used := w.sockets[id]; !used {
			return id
		}
	}
}

func hMemifSocketFilenameAddDel(s *Sim, _ *client, req *memif.MemifSocketFilenameAddDel) *memif.MemifSocketFilenameAddDelReply {
	if req.SocketID == 0 || req.SocketID == invalidIndex {
		return &memif.MemifSocketFilenameAddDelReply{Retval: rvInvalidArgument}
	}
	return &memif.MemifSocketFilenameAddDelReply{Retval: s.st.memifSocketFilenameAddDel(req.IsAdd, req.SocketID, req.SocketFilename)}
}

func hMemifSocketFilenameAddDelV2(s *Sim, _ *client, req *memif.MemifSocketFilenameAddDelV2) *memif.MemifSocketFilenameAddDelV2Reply {
	id := req.SocketID
	if id == 0 {
		return &memif.MemifSocketFilenameAddDelV2Reply{Retval: rvInvalidArgument}
	}
	if req.IsAdd && id == invalidIndex {
		id = s.st.unusedSocketID()
	}
	rv := s.st.memifSocketFilenameAddDel(req.IsAdd, id, req.SocketFilename)
	return &memif.MemifSocketFilenameAddDelV2Reply{Retval: rv, SocketID: id}
}

type memifArgs struct {
	role       memif.MemifRole
	mode       memif.MemifMode
	rxQueues   uint8
	txQueues   uint8
	id         uint32
	socketID   uint32
	ringSize   uint32
	bufferSize uint16
	noZeroCopy bool
	hwAddr     ethernet_types.MacAddress
	secret     string
}

// memifCreate follows vl_api_memif_create_t_handler + memif_create_if().
// On failure the reply's sw_if_index is 0, as VPP leaves it.
func (s *Sim) memifCreate(a memifArgs) (int32, uint32) {
	w := s.st
	ringSize := uint32(defaultMemifRingSize)
	if a.ringSize != 0 {
		ringSize = a.ringSize
	}
	if ringSize&(ringSize-1) != 0 {
		return rvInvalidArgument, 0
	}
	bufferSize := uint16(defaultMemifBufferSize)
	if a.bufferSize != 0 {
		bufferSize = a.bufferSize
	}
	isMaster := a.role == memif.MEMIF_ROLE_API_MASTER
	ms := w.sockets[a.socketID]
	if ms == nil {
		return rvInvalidArgument, 0
	}
	if ms.refCnt > 0 {
		// A socket file is either master or slave, not both.
		if ms.listener != isMaster {
			return rvSubifAlreadyExists, 0
		}
		if w.memifByID[a.socketID][a.id] != nil {
			return rvSubifAlreadyExists, 0
		}
	}
	if a.mode != memif.MEMIF_MODE_API_ETHERNET && a.mode != memif.MEMIF_MODE_API_IP {
		return rvSyscallError2, 0 // "unsupported interface mode"
	}
	if ms.refCnt == 0 && isMaster {
		if len(ms.filename) >= sunPathMax {
			return rvSyscallError4, 0
		}
		ln, err := listenSocketFile("unixpacket", ms.filename)
		if err != nil {
			// VPP 25.02 answers -14 whatever stops it listening, a regular
			// file in the way included.
			s.log.Warn("vppsim: memif listener", "path", ms.filename, "err", err)
			return rvSyscallError4, 0
		}
		ms.ln = ln
	}
	if ms.refCnt == 0 {
		ms.listener = isMaster
	}
	ms.refCnt++

	rxq, txq := a.rxQueues, a.txQueues
	if rxq == 0 {
		rxq = memifDefaultRxTxQueues
	}
	if txq == 0 {
		txq = memifDefaultRxTxQueues
	}
	i := &iface{
		swIfIndex: w.allocSwIfIndex(),
		name:      fmt.Sprintf("memif%d/%d", a.socketID, a.id),
		kind:      kindMemif,
		ethernet:  a.mode == memif.MEMIF_MODE_API_ETHERNET,
		linkMtu:   defaultMTU,
		mtu:       [4]uint32{defaultMTU, 0, 0, 0},
		memif: &memifIf{
			id: a.id, socketID: a.socketID, role: a.role, mode: a.mode,
			ringSize: ringSize, bufferSize: bufferSize, rxQueues: rxq, txQueues: txq,
			zeroCopy: !isMaster && !a.noZeroCopy, secret: a.secret,
		},
	}
	if !isMaster {
		i.memif.role = memif.MEMIF_ROLE_API_SLAVE
	}
	if i.ethernet {
		if a.hwAddr != (ethernet_types.MacAddress{}) {
			i.mac = a.hwAddr
		} else {
			i.mac = w.randomMAC()
		}
	}
	w.ifaces[i.swIfIndex] = i
	// VPP announces every new interface (flags 0: admin and link down).
	w.events = append(w.events, pendingEvent{swIfIndex: i.swIfIndex})
	if w.memifByID[a.socketID] == nil {
		w.memifByID[a.socketID] = map[uint32]*iface{}
	}
	w.memifByID[a.socketID][a.id] = i
	return rvOK, i.swIfIndex
}

func hMemifCreate(s *Sim, _ *client, req *memif.MemifCreate) *memif.MemifCreateReply {
	rv, idx := s.memifCreate(memifArgs{
		role: req.Role, mode: req.Mode, rxQueues: req.RxQueues, txQueues: req.TxQueues,
		id: req.ID, socketID: req.SocketID, ringSize: req.RingSize, bufferSize: req.BufferSize,
		noZeroCopy: req.NoZeroCopy, hwAddr: req.HwAddr, secret: req.Secret,
	})
	return &memif.MemifCreateReply{Retval: rv, SwIfIndex: interface_types.InterfaceIndex(idx)}
}

func hMemifCreateV2(s *Sim, _ *client, req *memif.MemifCreateV2) *memif.MemifCreateV2Reply {
	rv, idx := s.memifCreate(memifArgs{
		role: req.Role, mode: req.Mode, rxQueues: req.RxQueues, txQueues: req.TxQueues,
		id: req.ID, socketID: req.SocketID, ringSize: req.RingSize, bufferSize: req.BufferSize,
		noZeroCopy: req.NoZeroCopy, hwAddr: req.HwAddr, secret: req.Secret,
	})
	return &memif.MemifCreateV2Reply{Retval: rv, SwIfIndex: interface_types.InterfaceIndex(idx)}
}

func hMemifDelete(s *Sim, _ *client, req *memif.MemifDelete) *memif.MemifDeleteReply {
	w := s.st
	i := w.ifaces[uint32(req.SwIfIndex)]
	if i == nil || i.memif == nil {
		return &memif.MemifDeleteReply{Retval: rvInvalidSwIfIndex}
	}
	if ms := w.sockets[i.memif.socketID]; ms != nil {
		ms.refCnt--
		if ms.refCnt <= 0 {
			ms.refCnt = 0
			if ms.ln != nil {
				// VPP 25.02 stops listening but leaves the socket file.
				ms.ln.close(false)
				ms.ln = nil
			}
		}
	}
	w.removeIface(i)
	return &memif.MemifDeleteReply{}
}

// hMemifDump: like VPP, ring_size and buffer_size report the values
// negotiated on connection (run-time values); an interface that never
// connected reports ring_size 1 (1 << 0) and buffer_size 0. The configured
// values are in the JSON snapshot.
func hMemifDump(s *Sim, _ *client, _ *memif.MemifDump) []*memif.MemifDetails {
	w := s.st
	var out []*memif.MemifDetails
	for _, i := range w.sortedIfaces() {
		if i.memif == nil {
			continue
		}
		out = append(out, &memif.MemifDetails{
			SwIfIndex:  interface_types.InterfaceIndex(i.swIfIndex),
			HwAddr:     i.mac,
			ID:         i.memif.id,
			Role:       i.memif.role,
			Mode:       i.memif.mode,
			ZeroCopy:   i.memif.zeroCopy,
			SocketID:   i.memif.socketID,
			RingSize:   1,
			BufferSize: 0,
			Flags:      w.flags(i),
			IfName:     i.name,
		})
	}
	return out
}

func hMemifSocketFilenameDump(s *Sim, _ *client, _ *memif.MemifSocketFilenameDump) []*memif.MemifSocketFilenameDetails {
	var out []*memif.MemifSocketFilenameDetails
	for _, ms := range s.st.sortedSockets() {
		out = append(out, &memif.MemifSocketFilenameDetails{SocketID: ms.id, SocketFilename: ms.filename})
	}
	return out
}

// ---- vhost-user ----

type vhostArgs struct {
	isServer          bool
	sockFilename      string
	renumber          bool
	customDevInstance uint32
	useCustomMac      bool
	mac               ethernet_types.MacAddress
	tag               string
	gso, packed       bool
	eventIdx          bool
}

// vhostCreate follows vhost_user_create_if(): an existing interface on the
// same socket path answers IF_ALREADY_EXISTS with that interface's index.
func (s *Sim) vhostCreate(a vhostArgs) (int32, uint32) {
	w := s.st
	if a.sockFilename == "" {
		return rvInvalidArgument, invalidIndex
	}
	if i := w.vhostByPath[a.sockFilename]; i != nil {
		return rvIfAlreadyExists, i.swIfIndex
	}
	var ln *socketListener
	if a.isServer {
		if len(a.sockFilename) >= sunPathMax {
			return rvSyscallError2, invalidIndex
		}
		var err error
		ln, err = listenSocketFile("unix", a.sockFilename)
		if err != nil {
			s.log.Warn("vppsim: vhost-user listener", "path", a.sockFilename, "err", err)
			return rvSyscallError2, invalidIndex
		}
	}
	inst := w.allocVhostInstance()
	nameInst := inst
	if a.renumber {
		nameInst = a.customDevInstance
	}
	i := &iface{
		swIfIndex: w.allocSwIfIndex(),
		name:      fmt.Sprintf("%s%d", vhostUserInterfacePrefix, nameInst),
		kind:      kindVhost,
		ethernet:  true,
		linkMtu:   defaultMTU,
		mtu:       [4]uint32{defaultMTU, 0, 0, 0},
		tag:       truncTag(a.tag),
		vhost: &vhostIf{
			devInstance: inst, sockFilename: a.sockFilename, isServer: a.isServer,
			gso: a.gso, packed: a.packed, eventIdx: a.eventIdx, ln: ln,
		},
	}
	if a.useCustomMac {
		i.mac = a.mac
	} else {
		i.mac = w.randomMAC()
	}
	w.ifaces[i.swIfIndex] = i
	// VPP announces every new interface (flags 0: admin and link down).
	w.events = append(w.events, pendingEvent{swIfIndex: i.swIfIndex})
	w.vhostByPath[a.sockFilename] = i
	return rvOK, i.swIfIndex
}

func hCreateVhostUserIf(s *Sim, _ *client, req *vhost_user.CreateVhostUserIf) *vhost_user.CreateVhostUserIfReply {
	rv, idx := s.vhostCreate(vhostArgs{
		isServer: req.IsServer, sockFilename: req.SockFilename, renumber: req.Renumber,
		customDevInstance: req.CustomDevInstance, useCustomMac: req.UseCustomMac, mac: req.MacAddress,
		tag: req.Tag, gso: req.EnableGso, packed: req.EnablePacked,
	})
	return &vhost_user.CreateVhostUserIfReply{Retval: rv, SwIfIndex: interface_types.InterfaceIndex(idx)}
}

func hCreateVhostUserIfV2(s *Sim, _ *client, req *vhost_user.CreateVhostUserIfV2) *vhost_user.CreateVhostUserIfV2Reply {
	rv, idx := s.vhostCreate(vhostArgs{
		isServer: req.IsServer, sockFilename: req.SockFilename, renumber: req.Renumber,
		customDevInstance: req.CustomDevInstance, useCustomMac: req.UseCustomMac, mac: req.MacAddress,
		tag: req.Tag, gso: req.EnableGso, packed: req.EnablePacked, eventIdx: req.EnableEventIdx,
	})
	return &vhost_user.CreateVhostUserIfV2Reply{Retval: rv, SwIfIndex: interface_types.InterfaceIndex(idx)}
}

func hDeleteVhostUserIf(s *Sim, _ *client, req *vhost_user.DeleteVhostUserIf) *vhost_user.DeleteVhostUserIfReply {
	w := s.st
	i := w.ifaces[uint32(req.SwIfIndex)]
	if i == nil || i.vhost == nil {
		return &vhost_user.DeleteVhostUserIfReply{Retval: rvInvalidSwIfIndex}
	}
	if i.vhost.ln != nil {
		i.vhost.ln.close(true)
		i.vhost.ln = nil
	}
	w.vhostFree = append(w.vhostFree, i.vhost.devInstance)
	w.removeIface(i)
	return &vhost_user.DeleteVhostUserIfReply{}
}

func hSwInterfaceVhostUserDump(s *Sim, _ *client, req *vhost_user.SwInterfaceVhostUserDump) []*vhost_user.SwInterfaceVhostUserDetails {
	var out []*vhost_user.SwInterfaceVhostUserDetails
	for _, i := range s.st.sortedIfaces() {
		if i.vhost == nil {
			continue
		}
		if uint32(req.SwIfIndex) != invalidIndex && uint32(req.SwIfIndex) != i.swIfIndex {
			continue
		}
		d := &vhost_user.SwInterfaceVhostUserDetails{
			SwIfIndex:     interface_types.InterfaceIndex(i.swIfIndex),
			InterfaceName: i.name,
			IsServer:      i.vhost.isServer,
			SockFilename:  i.vhost.sockFilename,
		}
		if !i.vhost.isServer {
			// A client keeps trying to connect; report why it is not.
			if _, err := os.Stat(i.vhost.sockFilename); err != nil {
				d.SockErrno = int32(syscall.ENOENT)
			} else {
				d.SockErrno = int32(syscall.ECONNREFUSED)
			}
		}
		out = append(out, d)
	}
	return out
}

// ---- l2 ----

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

// ---- interface ----

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
	linkMtu := i.linkMtu
	if i.memif != nil && i.memif.mode == memif.MEMIF_MODE_API_IP {
		linkMtu = 0 // VPP 25.02 reports an IP-mode memif as type 0, link MTU 0
	}
	return &interfaces.SwInterfaceDetails{
		SwIfIndex:        interface_types.InterfaceIndex(i.swIfIndex),
		SupSwIfIndex:     i.swIfIndex,
		L2Address:        i.mac,
		Flags:            s.st.flags(i),
		Type:             interface_types.IF_API_TYPE_HARDWARE,
		LinkMtu:          linkMtu,
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

// ---- ip ----

func prefixFromAPI(p ip_types.Prefix) (netip.Prefix, bool) {
	var a netip.Addr
	switch p.Address.Af {
	case ip_types.ADDRESS_IP4:
		a = netip.AddrFrom4(p.Address.Un.GetIP4())
	case ip_types.ADDRESS_IP6:
		a = netip.AddrFrom16(p.Address.Un.GetIP6())
	default:
		return netip.Prefix{}, false
	}
	pfx := netip.PrefixFrom(a, int(p.Len))
	return pfx, pfx.IsValid()
}

func prefixToAPI(p netip.Prefix) ip_types.Prefix {
	return ip_types.Prefix{Address: addrToAPI(p.Addr()), Len: uint8(p.Bits())}
}

func addrToAPI(a netip.Addr) ip_types.Address {
	if a.Is4() {
		return ip_types.Address{Af: ip_types.ADDRESS_IP4, Un: ip_types.AddressUnionIP4(a.As4())}
	}
	return ip_types.Address{Af: ip_types.ADDRESS_IP6, Un: ip_types.AddressUnionIP6(a.As16())}
}

func hIPAddressDump(s *Sim, _ *client, req *ip.IPAddressDump) []*ip.IPAddressDetails {
	i := s.st.ifaces[uint32(req.SwIfIndex)]
	if i == nil {
		return nil
	}
	var out []*ip.IPAddressDetails
	for _, a := range i.addrs {
		if a.Addr().Is6() != req.IsIPv6 {
			continue
		}
		out = append(out, &ip.IPAddressDetails{
			SwIfIndex: req.SwIfIndex,
			Prefix:    ip_types.AddressWithPrefix(prefixToAPI(a)),
		})
	}
	return out
}

// addInterfaceRoutes adds the attached (connected) and local routes an
// interface address creates in table 0.
func (w *world) addInterfaceRoutes(swIfIndex uint32, a netip.Prefix) {
	host := netip.PrefixFrom(a.Addr(), a.Addr().BitLen())
	if a.Bits() < a.Addr().BitLen() {
		k := routeKey{0, a.Masked()}
		w.routes[k] = &route{key: k, source: srcInterface, shown: a, paths: []fib_types.FibPath{{
			SwIfIndex: swIfIndex, Weight: 1, Type: fib_types.FIB_API_PATH_TYPE_NORMAL, Proto: protoOf(a),
		}}}
	}
	k := routeKey{0, host}
	w.routes[k] = &route{key: k, source: srcInterface, paths: []fib_types.FibPath{{
		SwIfIndex: swIfIndex, Weight: 1, Type: fib_types.FIB_API_PATH_TYPE_LOCAL, Proto: protoOf(a),
	}}}
	// VPP 25.02 also drops the subnet's network and broadcast addresses
	// with /32 entries of their own.
	for _, d := range ipv4Edges(a) {
		k := routeKey{0, d}
		w.routes[k] = &route{key: k, source: srcInterface, paths: []fib_types.FibPath{{
			SwIfIndex: invalidIndex, Weight: 1, Type: fib_types.FIB_API_PATH_TYPE_DROP, Proto: protoOf(a),
		}}}
	}
}

// ipv4Edges are the network and broadcast /32s of an IPv4 subnet that has
// both (shorter than /31).
func ipv4Edges(a netip.Prefix) []netip.Prefix {
	if !a.Addr().Is4() || a.Bits() >= 31 {
		return nil
	}
	n := a.Masked().Addr().As4()
	b := n
	for i := a.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4(n), 32), netip.PrefixFrom(netip.AddrFrom4(b), 32)}
}

func (w *world) delInterfaceRoutes(swIfIndex uint32, a netip.Prefix) {
	for _, k := range []routeKey{{0, a.Masked()}, {0, netip.PrefixFrom(a.Addr(), a.Addr().BitLen())}} {
		if r := w.routes[k]; r != nil && r.source == srcInterface && len(r.paths) > 0 && r.paths[0].SwIfIndex == swIfIndex {
			delete(w.routes, k)
		}
	}
	for _, d := range ipv4Edges(a) {
		if r := w.routes[routeKey{0, d}]; r != nil && r.source == srcInterface {
			delete(w.routes, routeKey{0, d})
		}
	}
}

func normPath(p fib_types.FibPath) fib_types.FibPath {
	if p.Weight == 0 {
		p.Weight = 1
	}
	return p
}

// hIPRouteAddDel follows ip_route_add_del_t_handler for table 0 (the only
// table that exists; others are NO_SUCH_FIB). Without is_multipath an add
// replaces the route's paths; a delete without paths removes the route, with
// paths removes those paths. Deleting what is not there is not an error.
func hIPRouteAddDel(s *Sim, _ *client, req *ip.IPRouteAddDel) *ip.IPRouteAddDelReply {
	w := s.st
	r := req.Route
	if r.TableID != 0 {
		return &ip.IPRouteAddDelReply{Retval: rvNoSuchFib}
	}
	pfx, ok := prefixFromAPI(r.Prefix)
	if !ok {
		return &ip.IPRouteAddDelReply{Retval: rvInvalidArgument}
	}
	pfx = pfx.Masked()
	paths := make([]fib_types.FibPath, 0, len(r.Paths))
	for _, p := range r.Paths {
		if p.SwIfIndex != invalidIndex {
			if w.ifaces[p.SwIfIndex] == nil {
				return &ip.IPRouteAddDelReply{Retval: rvNoMatchingInterface} // VPP 25.02: -54, not -2
			}
		}
		paths = append(paths, normPath(p))
	}
	k := routeKey{0, pfx}
	cur := w.routes[k]
	if cur != nil && cur.source != srcAPI {
		if !req.IsAdd {
			return &ip.IPRouteAddDelReply{}
		}
		cur = nil // the API source takes precedence over VPP's own entry
	}
	if req.IsAdd {
		if len(paths) == 0 {
			return &ip.IPRouteAddDelReply{Retval: rvInvalidArgument}
		}
		if cur == nil || !req.IsMultipath {
			w.routes[k] = &route{key: k, source: srcAPI, paths: paths}
			return &ip.IPRouteAddDelReply{StatsIndex: uint32(len(w.routes))}
		}
		for _, p := range paths {
			if !containsPath(cur.paths, p) {
				cur.paths = append(cur.paths, p)
			}
		}
		return &ip.IPRouteAddDelReply{StatsIndex: uint32(len(w.routes))}
	}
	if cur == nil {
		return &ip.IPRouteAddDelReply{}
	}
	if len(paths) == 0 {
		delete(w.routes, k)
		return &ip.IPRouteAddDelReply{}
	}
	kept := cur.paths[:0]
	for _, p := range cur.paths {
		if !containsPath(paths, p) {
			kept = append(kept, p)
		}
	}
	cur.paths = kept
	if len(cur.paths) == 0 {
		delete(w.routes, k)
	}
	return &ip.IPRouteAddDelReply{}
}

func containsPath(ps []fib_types.FibPath, p fib_types.FibPath) bool {
	for _, q := range ps {
		if q.SwIfIndex == p.SwIfIndex && q.Type == p.Type && q.Proto == p.Proto && q.Nh.Address == p.Nh.Address {
			return true
		}
	}
	return false
}

func hIPRouteDump(s *Sim, _ *client, req *ip.IPRouteDump) []*ip.IPRouteDetails {
	if req.Table.TableID != 0 {
		return nil
	}
	var out []*ip.IPRouteDetails
	for _, r := range s.st.sortedRoutes() {
		if r.key.prefix.Addr().Is6() != req.Table.IsIP6 {
			continue
		}
		shown := r.key.prefix
		if r.shown.IsValid() {
			shown = r.shown
		}
		out = append(out, &ip.IPRouteDetails{Route: ip.IPRoute{
			TableID: 0,
			Prefix:  prefixToAPI(shown),
			NPaths:  uint8(len(r.paths)),
			Paths:   append([]fib_types.FibPath(nil), r.paths...),
		}})
	}
	return out
}
