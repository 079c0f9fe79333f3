package vpp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/vxlan"
)

// VXLANPort is the UDP port of every tunnel the driver makes (IANA's
// VXLAN port, VPP's default), on both ends.
const VXLANPort = 4789

// MaxVNI is the largest VXLAN network identifier (24 bits).
const MaxVNI = 1<<24 - 1

// VXLANTunnel is an L2 VXLAN tunnel: an interface of its own
// (vxlan_tunnel<instance>) that VPP creates admin-up.
type VXLANTunnel struct {
	SwIfIndex uint32
	Src, Dst  netip.Addr // local and remote underlay addresses
	VNI       uint32
}

func (t VXLANTunnel) String() string { return vxlanObj(t.Src, t.Dst, t.VNI) }

func vxlanObj(src, dst netip.Addr, vni uint32) string {
	return fmt.Sprintf("%s -> %s vni %d", src, dst, vni)
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

// vxlanTunnels dumps the tunnels; only the driver's kind (UDP port 4789
// both ways, table 0, unicast) is reported by VXLANTunnels, every one by
// this.
func vxlanTunnels(ctx context.Context, s *session) ([]*vxlan.VxlanTunnelV2Details, error) {
	return drain[*vxlan.VxlanTunnelV2Details](s.vxlan.VxlanTunnelV2Dump(ctx, &vxlan.VxlanTunnelV2Dump{SwIfIndex: interface_types.InterfaceIndex(NoInterface)}))
}

func tunnelFromDetails(d *vxlan.VxlanTunnelV2Details) VXLANTunnel {
	return VXLANTunnel{SwIfIndex: uint32(d.SwIfIndex), Src: addrFromAPI(d.SrcAddress), Dst: addrFromAPI(d.DstAddress), VNI: d.Vni}
}

// VXLANTunnels dumps every VXLAN tunnel (vxlan_tunnel_v2_dump, sw_if_index
// ~0). It fails with ErrUnsupported when VPP lacks the vxlan plugin.
func (c *Client) VXLANTunnels(ctx context.Context) ([]VXLANTunnel, error) {
	return read(c, ctx, FeatureVXLAN, "dump vxlan tunnels", "", func(ctx context.Context, s *session) ([]VXLANTunnel, error) {
		ds, err := vxlanTunnels(ctx, s)
		out := make([]VXLANTunnel, 0, len(ds))
		for _, d := range ds {
			out = append(out, tunnelFromDetails(d))
		}
		return out, err
	})
}

func validTunnel(src, dst netip.Addr, vni uint32) error {
	switch {
	case !src.IsValid() || !dst.IsValid():
		return errors.New("source and destination addresses are required")
	case src.Unmap().Is4() != dst.Unmap().Is4():
		return errors.New("source and destination must both be IPv4 or both IPv6")
	case src.Unmap() == dst.Unmap():
		return errors.New("source and destination are the same address") // VPP: -82
	case dst.IsMulticast():
		return errors.New("multicast destinations are not supported")
	case vni > MaxVNI:
		return fmt.Errorf("vni must be at most %d", MaxVNI)
	}
	return nil
}

func vxlanReq(isAdd bool, src, dst netip.Addr, vni uint32) *vxlan.VxlanAddDelTunnelV3 {
	return &vxlan.VxlanAddDelTunnelV3{
		IsAdd:          isAdd,
		Instance:       NoInterface, // ~0: VPP numbers it (vxlan_tunnel<n>, the lowest free n)
		SrcAddress:     addrToAPI(src.Unmap()),
		DstAddress:     addrToAPI(dst.Unmap()),
		SrcPort:        VXLANPort,
		DstPort:        VXLANPort,
		McastSwIfIndex: interface_types.InterfaceIndex(NoInterface),
		EncapVrfID:     0,
		DecapNextIndex: NoInterface, // ~0: VPP's default, l2-input (the dump says 1)
		Vni:            vni,
	}
}

// CreateVXLANTunnel creates an L2 tunnel (vxlan_add_del_tunnel_v3: instance
// ~0, decap to l2-input, UDP port 4789 both ways, table 0) and returns its
// sw_if_index. VPP creates it admin-up; put it into a bridge domain with
// AddToBridge and tag it with SetOwner. A tunnel that exists already
// (TUNNEL_EXIST, -75, which carries no index) is ErrConflict naming its
// index, found by dump, and is left as it is: whether it is the caller's
// to adopt only its tag can tell. It fails with ErrUnsupported when VPP
// lacks the vxlan plugin.
func (c *Client) CreateVXLANTunnel(ctx context.Context, src, dst netip.Addr, vni uint32) (uint32, error) {
	const op = "create vxlan tunnel"
	obj := vxlanObj(src, dst, vni)
	if err := validTunnel(src, dst, vni); err != nil {
		return NoInterface, opErr(op, obj, ErrInvalid, err)
	}
	s, rctx, cancel, err := c.beginWith(ctx, FeatureVXLAN, op, obj)
	if err != nil {
		return NoInterface, err
	}
	defer cancel()
	r, err := s.vxlan.VxlanAddDelTunnelV3(rctx, vxlanReq(true, src, dst, vni))
	if err == nil {
		return uint32(r.SwIfIndex), nil
	}
	if !retvalIs(err, api.TUNNEL_EXIST) {
		return NoInterface, vppErr(op, obj, err)
	}
	cause := err
	ds, err := vxlanTunnels(rctx, s)
	if err != nil {
		return NoInterface, opErr(op, obj, nil, err)
	}
	for _, d := range ds {
		if t := tunnelFromDetails(d); t.Src == src.Unmap() && t.Dst == dst.Unmap() && t.VNI == vni && d.SrcPort == VXLANPort {
			return NoInterface, opErr(op, obj, ErrConflict, fmt.Errorf("exists already as sw_if_index %d (ports %d/%d, table %d), left as it is (%w)",
				t.SwIfIndex, d.SrcPort, d.DstPort, d.EncapVrfID, cause))
		}
	}
	return NoInterface, opErr(op, obj, ErrConflict, fmt.Errorf("VPP says it exists but its dump has no such tunnel (%w)", cause))
}

// DeleteVXLANTunnel deletes a tunnel (by its endpoints and VNI; VPP takes
// it out of its bridge domain). A tunnel already gone (NO_SUCH_ENTRY, -6)
// is success. It fails with ErrUnsupported when VPP lacks the vxlan plugin.
func (c *Client) DeleteVXLANTunnel(ctx context.Context, t VXLANTunnel) error {
	const op = "delete vxlan tunnel"
	obj := fmt.Sprintf("%s (%s)", t, ifObj(t.SwIfIndex))
	if err := validTunnel(t.Src, t.Dst, t.VNI); err != nil {
		return opErr(op, obj, ErrInvalid, err)
	}
	s, rctx, cancel, err := c.beginWith(ctx, FeatureVXLAN, op, obj)
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.vxlan.VxlanAddDelTunnelV3(rctx, vxlanReq(false, t.Src, t.Dst, t.VNI))
	if err == nil || retvalIs(err, api.NO_SUCH_ENTRY) {
		return nil
	}
	return vppErr(op, obj, err)
}
