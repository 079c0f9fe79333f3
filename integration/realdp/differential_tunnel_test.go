package realdp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"

	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/ethernet_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/vxlan"
)

// vethPair creates a veth pair with random names in the test's network
// namespace (both dataplanes of the differential test run there) and
// removes it at cleanup. It returns the two ends' names.
func vethPair(t *testing.T) (string, string) {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	a, z := "uva"+hex.EncodeToString(b[:]), "uvz"+hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "link", "add", a, "type", "veth", "peer", "name", z).CombinedOutput(); err != nil {
		t.Skipf("cannot create a veth pair: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", a).Run() })
	return a, z
}

func ip4(s string) ip_types.Address {
	a, err := ip_types.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

func vxlanReq(isAdd bool, src, dst string, vni uint32) *vxlan.VxlanAddDelTunnelV3 {
	return &vxlan.VxlanAddDelTunnelV3{IsAdd: isAdd, Instance: ^uint32(0), SrcAddress: ip4(src), DstAddress: ip4(dst),
		SrcPort: 4789, DstPort: 4789, McastSwIfIndex: ^interface_types.InterfaceIndex(0), DecapNextIndex: ^uint32(0), Vni: vni}
}

// ifDump describes every interface from index from on, without what
// differs between instances (MACs are shown as "mac=linux" when the MAC is
// the Linux interface's, "mac=set" when some other, "mac=none").
func ifDump(ctx context.Context, a *vppAPI, from uint32) string {
	ds, err := drain(a.ifs.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)}))
	if err != nil {
		return rv(err)
	}
	var linuxMAC ethernet_types.MacAddress
	if li, err := net.InterfaceByName(a.link); err == nil {
		copy(linuxMAC[:], li.HardwareAddr)
	}
	var out []string
	for _, d := range ds {
		if uint32(d.SwIfIndex) < from {
			continue
		}
		mac := "set"
		switch d.L2Address {
		case ethernet_types.MacAddress{}:
			mac = "none"
		case linuxMAC:
			mac = "linux"
		}
		out = append(out, fmt.Sprintf("%d %s dev %q type %d sup %d flags %d link_mtu %d mtu %v mac=%s tag %q",
			d.SwIfIndex, d.InterfaceName, d.InterfaceDevType, d.Type, d.SupSwIfIndex, d.Flags, d.LinkMtu, d.Mtu, mac, d.Tag))
	}
	return strings.Join(out, "; ")
}

func vxlanDump(ctx context.Context, a *vppAPI, idx uint32) string {
	ds, err := drain(a.vxlan.VxlanTunnelV2Dump(ctx, &vxlan.VxlanTunnelV2Dump{SwIfIndex: interface_types.InterfaceIndex(idx)}))
	if err != nil {
		return rv(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%d inst %d %s:%d -> %s:%d mcast %d vrf %d decap %d vni %d", d.SwIfIndex, d.Instance,
			d.SrcAddress, d.SrcPort, d.DstAddress, d.DstPort, d.McastSwIfIndex, d.EncapVrfID, d.DecapNextIndex, d.Vni))
	}
	return "[" + strings.Join(out, "; ") + "]"
}

func afPacketDump(ctx context.Context, a *vppAPI) string {
	ds, err := drain(a.afp.AfPacketDump(ctx, &af_packet.AfPacketDump{}))
	if err != nil {
		return rv(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%d %s", d.SwIfIndex, d.HostIfName))
	}
	return "[" + strings.Join(out, "; ") + "]"
}

func afPacketReq(name string) *af_packet.AfPacketCreateV3 {
	return &af_packet.AfPacketCreateV3{Mode: af_packet.AF_PACKET_API_MODE_ETHERNET, HostIfName: name, NumRxQueues: 1, NumTxQueues: 1}
}

func bdMembers(ctx context.Context, a *vppAPI, bd uint32) string {
	ds, err := drain(a.l2.BridgeDomainDump(ctx, &l2.BridgeDomainDump{BdID: bd, SwIfIndex: ^interface_types.InterfaceIndex(0)}))
	if err != nil {
		return rv(err)
	}
	var out []string
	for _, d := range ds {
		for _, m := range d.SwIfDetails {
			out = append(out, fmt.Sprintf("%d shg %d", m.SwIfIndex, m.Shg))
		}
	}
	return "[" + strings.Join(out, "; ") + "]"
}

// tunnelSteps are the calls of issue 22: an af_packet uplink on a Linux
// interface and VXLAN tunnels in a bridge domain with split horizon. They
// run after steps, on what those left (sw_if_indexes 1 and 2 free again).
var tunnelSteps = []step{
	{"af_packet on a Linux interface that does not exist", func(ctx context.Context, a *vppAPI) string {
		r, err := a.afp.AfPacketCreateV3(ctx, afPacketReq("uspacenosuch0"))
		return fmt.Sprintf("%s sw_if_index %d; %s", rv(err), or0(r).SwIfIndex, afPacketDump(ctx, a))
	}},
	{"af_packet on the veth end", func(ctx context.Context, a *vppAPI) string {
		r, err := a.afp.AfPacketCreateV3(ctx, afPacketReq(a.link))
		a.ids["uplink"] = uint32(or0(r).SwIfIndex)
		return fmt.Sprintf("%s sw_if_index %d; %s; %s", rv(err), or0(r).SwIfIndex, afPacketDump(ctx, a), ifDump(ctx, a, 1))
	}},
	{"af_packet on the same interface again", func(ctx context.Context, a *vppAPI) string {
		r, err := a.afp.AfPacketCreateV3(ctx, afPacketReq(a.link))
		return fmt.Sprintf("%s sw_if_index %d; %s", rv(err), or0(r).SwIfIndex, afPacketDump(ctx, a))
	}},
	{"af_packet with a random MAC on the peer", func(ctx context.Context, a *vppAPI) string {
		req := afPacketReq(a.peer)
		req.UseRandomHwAddr = true
		r, err := a.afp.AfPacketCreateV3(ctx, req)
		if err != nil {
			return rv(err)
		}
		_, err2 := a.afp.AfPacketDelete(ctx, &af_packet.AfPacketDelete{HostIfName: a.peer})
		return fmt.Sprintf("sw_if_index %d; delete %s; %s", or0(r).SwIfIndex, rv(err2), afPacketDump(ctx, a))
	}},
	{"vxlan tunnel", func(ctx context.Context, a *vppAPI) string {
		r, err := a.vxlan.VxlanAddDelTunnelV3(ctx, vxlanReq(true, "192.168.77.1", "192.168.77.2", 4242))
		a.ids["tunnel"] = uint32(or0(r).SwIfIndex)
		return fmt.Sprintf("%s sw_if_index %d; %s; %s", rv(err), or0(r).SwIfIndex, vxlanDump(ctx, a, ^uint32(0)), ifDump(ctx, a, 1))
	}},
	{"the same vxlan tunnel again", func(ctx context.Context, a *vppAPI) string {
		r, err := a.vxlan.VxlanAddDelTunnelV3(ctx, vxlanReq(true, "192.168.77.1", "192.168.77.2", 4242))
		return fmt.Sprintf("%s sw_if_index %d", rv(err), or0(r).SwIfIndex)
	}},
	{"same endpoints, other vni; other endpoint, same vni", func(ctx context.Context, a *vppAPI) string {
		r1, err1 := a.vxlan.VxlanAddDelTunnelV3(ctx, vxlanReq(true, "192.168.77.1", "192.168.77.2", 4243))
		r2, err2 := a.vxlan.VxlanAddDelTunnelV3(ctx, vxlanReq(true, "192.168.77.1", "192.168.77.3", 4242))
		return fmt.Sprintf("%s %d, %s %d; %s", rv(err1), or0(r1).SwIfIndex, rv(err2), or0(r2).SwIfIndex, vxlanDump(ctx, a, ^uint32(0)))
	}},
	{"vxlan with src = dst; with default instance, ports and decap (zeros)", func(ctx context.Context, a *vppAPI) string {
		r1, err1 := a.vxlan.VxlanAddDelTunnelV3(ctx, vxlanReq(true, "192.168.77.1", "192.168.77.1", 1))
		r2, err2 := a.vxlan.VxlanAddDelTunnelV3(ctx, &vxlan.VxlanAddDelTunnelV3{IsAdd: true, SrcAddress: ip4("192.168.77.1"),
			DstAddress: ip4("192.168.77.9"), Vni: 9})
		d := vxlanDump(ctx, a, uint32(or0(r2).SwIfIndex))
		var err3 error
		if err2 == nil {
			_, err3 = a.vxlan.VxlanAddDelTunnelV3(ctx, &vxlan.VxlanAddDelTunnelV3{IsAdd: false, SrcAddress: ip4("192.168.77.1"),
				DstAddress: ip4("192.168.77.9"), Vni: 9})
		}
		return fmt.Sprintf("%s %d; %s %d %s; delete %s", rv(err1), or0(r1).SwIfIndex, rv(err2), or0(r2).SwIfIndex, d, rv(err3))
	}},
	{"vxlan tunnel and uplink into a bridge domain", func(ctx context.Context, a *vppAPI) string {
		_, err := a.l2.BridgeDomainAddDel(ctx, &l2.BridgeDomainAddDel{BdID: 22, Flood: true, UuFlood: true, Forward: true, Learn: true, IsAdd: true})
		up, tun := interface_types.InterfaceIndex(a.ids["uplink"]), interface_types.InterfaceIndex(a.ids["tunnel"])
		_, err1 := a.l2.SwInterfaceSetL2Bridge(ctx, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: up, BdID: 22, Enable: true})
		_, err2 := a.l2.SwInterfaceSetL2Bridge(ctx, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: tun, BdID: 22, Shg: 1, Enable: true})
		_, err3 := a.ifs.SwInterfaceSetFlags(ctx, &interfaces.SwInterfaceSetFlags{SwIfIndex: tun, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP})
		_, err4 := a.ifs.SwInterfaceSetFlags(ctx, &interfaces.SwInterfaceSetFlags{SwIfIndex: up, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP})
		return fmt.Sprintf("%s %s %s %s %s; %s; %s", rv(err), rv(err1), rv(err2), rv(err3), rv(err4), bdMembers(ctx, a, 22), ifDump(ctx, a, 1))
	}},
	{"delete a vxlan tunnel in the bridge domain, twice", func(ctx context.Context, a *vppAPI) string {
		r1, err1 := a.vxlan.VxlanAddDelTunnelV3(ctx, vxlanReq(false, "192.168.77.1", "192.168.77.2", 4242))
		r2, err2 := a.vxlan.VxlanAddDelTunnelV3(ctx, vxlanReq(false, "192.168.77.1", "192.168.77.2", 4242))
		return fmt.Sprintf("%s %d, %s %d; %s; %s; %s", rv(err1), or0(r1).SwIfIndex, rv(err2), or0(r2).SwIfIndex,
			bdMembers(ctx, a, 22), vxlanDump(ctx, a, ^uint32(0)), ifDump(ctx, a, 1))
	}},
	{"a new tunnel takes the freed instance and index", func(ctx context.Context, a *vppAPI) string {
		r, err := a.vxlan.VxlanAddDelTunnelV3(ctx, vxlanReq(true, "192.168.77.1", "192.168.77.5", 4242))
		return fmt.Sprintf("%s sw_if_index %d; %s; %s", rv(err), or0(r).SwIfIndex, vxlanDump(ctx, a, uint32(or0(r).SwIfIndex)), ifDump(ctx, a, 2))
	}},
	{"vxlan dump of a non-tunnel and a missing index", func(ctx context.Context, a *vppAPI) string {
		return vxlanDump(ctx, a, a.ids["uplink"]) + " " + vxlanDump(ctx, a, 77)
	}},
	{"delete the uplink in the bridge domain, twice, and one never made", func(ctx context.Context, a *vppAPI) string {
		_, err1 := a.afp.AfPacketDelete(ctx, &af_packet.AfPacketDelete{HostIfName: a.link})
		_, err2 := a.afp.AfPacketDelete(ctx, &af_packet.AfPacketDelete{HostIfName: a.link})
		_, err3 := a.afp.AfPacketDelete(ctx, &af_packet.AfPacketDelete{HostIfName: "uspacenosuch0"})
		return fmt.Sprintf("%s %s %s; %s; %s; %s", rv(err1), rv(err2), rv(err3), afPacketDump(ctx, a), bdMembers(ctx, a, 22), ifDump(ctx, a, 1))
	}},
	{"the uplink again gets the freed index", func(ctx context.Context, a *vppAPI) string {
		r, err := a.afp.AfPacketCreateV3(ctx, afPacketReq(a.link))
		return fmt.Sprintf("%s sw_if_index %d; %s; %s", rv(err), or0(r).SwIfIndex, afPacketDump(ctx, a), ifDump(ctx, a, 1))
	}},
	{"af_packet again in IP mode on a tagged one: the reply, and the tag kept", func(ctx context.Context, a *vppAPI) string {
		_, err1 := a.ifs.SwInterfaceTagAddDel(ctx, &interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: 1, Tag: "operator"})
		req := afPacketReq(a.link)
		req.Mode = af_packet.AF_PACKET_API_MODE_IP
		r, err2 := a.afp.AfPacketCreateV3(ctx, req)
		return fmt.Sprintf("%s; %s sw_if_index %d; %s", rv(err1), rv(err2), or0(r).SwIfIndex, ifDump(ctx, a, 1))
	}},
	{"vxlan with the same endpoints and vni as a tagged one, other ports", func(ctx context.Context, a *vppAPI) string {
		r1, err1 := a.vxlan.VxlanAddDelTunnelV3(ctx, vxlanReq(true, "192.168.77.1", "192.168.77.7", 7))
		_, errt := a.ifs.SwInterfaceTagAddDel(ctx, &interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: or0(r1).SwIfIndex, Tag: "operator"})
		r2, err2 := a.vxlan.VxlanAddDelTunnelV3(ctx, vxlanReq(true, "192.168.77.1", "192.168.77.7", 7))
		dst := vxlanReq(true, "192.168.77.1", "192.168.77.7", 7)
		dst.DstPort = 4790
		r3, err3 := a.vxlan.VxlanAddDelTunnelV3(ctx, dst)
		src := vxlanReq(true, "192.168.77.1", "192.168.77.7", 7)
		src.SrcPort = 4790
		r4, err4 := a.vxlan.VxlanAddDelTunnelV3(ctx, src)
		return fmt.Sprintf("%s %d; tag %s; again %s %d; dst port 4790 %s %d; src port 4790 %s %d; %s; %s", rv(err1), or0(r1).SwIfIndex, rv(errt),
			rv(err2), or0(r2).SwIfIndex, rv(err3), or0(r3).SwIfIndex, rv(err4), or0(r4).SwIfIndex, vxlanDump(ctx, a, ^uint32(0)), ifDump(ctx, a, 1))
	}},
}

// or0 is *p, or T's zero value when p is nil (a call that failed before
// VPP answered returns no reply).
func or0[T any](p *T) T {
	if p == nil {
		var z T
		return z
	}
	return *p
}
