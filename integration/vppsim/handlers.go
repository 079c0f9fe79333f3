package vppsim

import (
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/memclnt"
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

// allHandlers lists every request the simulator implements, area by area;
// each area's handlers live in the file named as agent/vpp's (memif.go,
// vhost.go, l2.go, iface.go, route.go, afpacket.go, vxlan.go). The message
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
		// af_packet (afpacket.go), vxlan (vxlan.go)
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
