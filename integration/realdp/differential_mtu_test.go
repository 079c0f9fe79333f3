package realdp_test

import (
	"context"
	"fmt"

	"go.fd.io/govpp/binapi/af_packet"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/memif"
)

func setMTU(ctx context.Context, a *vppAPI, idx interface_types.InterfaceIndex, mtu ...uint32) string {
	_, err := a.ifs.SwInterfaceSetMtu(ctx, &interfaces.SwInterfaceSetMtu{SwIfIndex: idx, Mtu: mtu})
	return rv(err)
}

// mtuSteps are the MTU calls of issue 27 on every kind of interface the
// agents set one on. VPP 25.02 takes any sw_interface_set_mtu value as
// given (none is checked against the link MTU) and never touches the
// Linux interface under an af_packet; hw_interface_set_mtu, which uspace
// does not send, would (it sets the Linux MTU of an af_packet's interface
// to the value plus 44, and answers -30 on an IP-mode memif). They run
// after tunnelSteps, which leave the uplink on the veth end.
var mtuSteps = []step{
	{"sw MTU on the af_packet uplink", func(ctx context.Context, a *vppAPI) string {
		ds, err := drain(a.afp.AfPacketDump(ctx, &af_packet.AfPacketDump{}))
		if err != nil || len(ds) != 1 {
			return fmt.Sprintf("af_packet dump: %d %s", len(ds), rv(err))
		}
		up := ds[0].SwIfIndex
		r1 := setMTU(ctx, a, up, 1500, 0, 0, 0)
		d1 := ifDump(ctx, a, uint32(up))
		r2 := setMTU(ctx, a, up, 65535, 0, 0, 0)
		d2 := ifDump(ctx, a, uint32(up))
		r3 := setMTU(ctx, a, up, 0, 1400, 0, 0)
		return fmt.Sprintf("%s %s; %s %s; %s %s", r1, d1, r2, d2, r3, ifDump(ctx, a, uint32(up)))
	}},
	{"sw MTU on an ethernet and an IP-mode memif", func(ctx context.Context, a *vppAPI) string {
		_, err := a.mem.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: true, SocketID: 3, SocketFilename: a.dir + "/mtu.sock"})
		if err != nil {
			return rv(err)
		}
		var out []string
		for id, mode := range []memif.MemifMode{memif.MEMIF_MODE_API_ETHERNET, memif.MEMIF_MODE_API_IP} {
			r, err := a.mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, Mode: mode, SocketID: 3, ID: uint32(id)})
			if err != nil {
				return rv(err)
			}
			before := ifDump(ctx, a, uint32(r.SwIfIndex))
			set := setMTU(ctx, a, r.SwIfIndex, 1450, 0, 0, 0)
			out = append(out, fmt.Sprintf("%s; %s %s", before, set, ifDump(ctx, a, uint32(r.SwIfIndex))))
			_, err = a.mem.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: r.SwIfIndex})
			out = append(out, "delete "+rv(err))
		}
		_, err = a.mem.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: false, SocketID: 3})
		return fmt.Sprintf("%v; socket delete %s", out, rv(err))
	}},
	{"sw MTU on a VXLAN tunnel", func(ctx context.Context, a *vppAPI) string {
		r, err := a.vxlan.VxlanAddDelTunnelV3(ctx, vxlanReq(true, "192.168.77.1", "192.168.77.7", 7))
		if err != nil {
			return rv(err)
		}
		set := setMTU(ctx, a, r.SwIfIndex, 1450, 0, 0, 0)
		d := ifDump(ctx, a, uint32(r.SwIfIndex))
		_, err = a.vxlan.VxlanAddDelTunnelV3(ctx, vxlanReq(false, "192.168.77.1", "192.168.77.7", 7))
		return fmt.Sprintf("%s %s; delete %s", set, d, rv(err))
	}},
	{"sw MTU on a missing index and on local0", func(ctx context.Context, a *vppAPI) string {
		missing := setMTU(ctx, a, 77, 1500, 0, 0, 0)
		local := setMTU(ctx, a, 0, 1500, 0, 0, 0)
		ds, err := drain(a.ifs.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: 0}))
		if err != nil || len(ds) == 0 {
			return fmt.Sprintf("%s %s; dump %s", missing, local, rv(err))
		}
		return fmt.Sprintf("%s %s; local0 mtu %v", missing, local, ds[0].Mtu)
	}},
	{"delete the uplink", func(ctx context.Context, a *vppAPI) string {
		_, err := a.afp.AfPacketDelete(ctx, &af_packet.AfPacketDelete{HostIfName: a.link})
		return rv(err) + "; " + afPacketDump(ctx, a)
	}},
}
