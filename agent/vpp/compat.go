package vpp

import (
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/core"
)

// checkCompatibility verifies every message the driver sends or receives.
// It deliberately does not demand the packages' whole AllMessages(): a VPP
// that differs only in messages uspace never uses is fine.
func checkCompatibility(conn *core.Connection) error {
	ch, err := conn.NewAPIChannel()
	if err != nil {
		return err
	}
	defer ch.Close()
	return ch.CheckCompatiblity(RequiredMessages()...)
}

// RequiredMessages lists every binapi message the driver needs: a VPP
// lacking one is incompatible. The messages of optional features (plugins
// such as vxlan and af_packet) are not among them; see OptionalMessages and
// CheckFeature.
func RequiredMessages() []api.Message {
	return []api.Message{
		(*memclnt.ControlPing)(nil), (*memclnt.ControlPingReply)(nil),
		(*vpe.ShowVersion)(nil), (*vpe.ShowVersionReply)(nil),

		(*memif.MemifSocketFilenameAddDelV2)(nil), (*memif.MemifSocketFilenameAddDelV2Reply)(nil),
		(*memif.MemifSocketFilenameDump)(nil), (*memif.MemifSocketFilenameDetails)(nil),
		(*memif.MemifCreateV2)(nil), (*memif.MemifCreateV2Reply)(nil),
		(*memif.MemifDelete)(nil), (*memif.MemifDeleteReply)(nil),
		(*memif.MemifDump)(nil), (*memif.MemifDetails)(nil),

		(*vhost_user.CreateVhostUserIfV2)(nil), (*vhost_user.CreateVhostUserIfV2Reply)(nil),
		(*vhost_user.DeleteVhostUserIf)(nil), (*vhost_user.DeleteVhostUserIfReply)(nil),
		(*vhost_user.SwInterfaceVhostUserDump)(nil), (*vhost_user.SwInterfaceVhostUserDetails)(nil),

		(*l2.BridgeDomainAddDel)(nil), (*l2.BridgeDomainAddDelReply)(nil),
		(*l2.BridgeDomainDump)(nil), (*l2.BridgeDomainDetails)(nil),
		(*l2.SwInterfaceSetL2Bridge)(nil), (*l2.SwInterfaceSetL2BridgeReply)(nil),

		(*interfaces.SwInterfaceSetFlags)(nil), (*interfaces.SwInterfaceSetFlagsReply)(nil),
		(*interfaces.SwInterfaceSetMtu)(nil), (*interfaces.SwInterfaceSetMtuReply)(nil),
		(*interfaces.SwInterfaceSetMacAddress)(nil), (*interfaces.SwInterfaceSetMacAddressReply)(nil),
		(*interfaces.SwInterfaceAddDelAddress)(nil), (*interfaces.SwInterfaceAddDelAddressReply)(nil),
		(*interfaces.SwInterfaceTagAddDel)(nil), (*interfaces.SwInterfaceTagAddDelReply)(nil),
		(*interfaces.SwInterfaceDump)(nil), (*interfaces.SwInterfaceDetails)(nil),
		(*interfaces.WantInterfaceEvents)(nil), (*interfaces.WantInterfaceEventsReply)(nil),
		(*interfaces.SwInterfaceEvent)(nil),

		(*ip.IPAddressDump)(nil), (*ip.IPAddressDetails)(nil),
		(*ip.IPRouteAddDel)(nil), (*ip.IPRouteAddDelReply)(nil),
		(*ip.IPRouteDump)(nil), (*ip.IPRouteDetails)(nil),
	}
}
