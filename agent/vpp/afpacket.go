package vpp

import (
	"context"
	"errors"
	"fmt"
	"net"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/ethernet_types"
)

// maxLinuxIfName is IFNAMSIZ without its NUL.
const maxLinuxIfName = 15

// AFPacket is a VPP interface on a Linux interface (VPP names it
// host-<HostIfName>, device type "af-packet").
type AFPacket struct {
	SwIfIndex  uint32
	HostIfName string
}

func afpObj(name string) string { return fmt.Sprintf("on %q", name) }

// AFPackets lists the af_packet interfaces (af_packet_dump). It fails with
// ErrUnsupported when VPP lacks the af_packet plugin.
func (c *Client) AFPackets(ctx context.Context) ([]AFPacket, error) {
	return read(c, ctx, FeatureAFPacket, "dump af_packet interfaces", "", afPackets)
}

func afPackets(ctx context.Context, s *session) ([]AFPacket, error) {
	ds, err := drain[*af_packet.AfPacketDetails](s.afp.AfPacketDump(ctx, &af_packet.AfPacketDump{}))
	if err != nil {
		return nil, err
	}
	out := make([]AFPacket, 0, len(ds))
	for _, d := range ds {
		out = append(out, AFPacket{SwIfIndex: uint32(d.SwIfIndex), HostIfName: d.HostIfName})
	}
	return out, nil
}

func validLinuxIfName(name string) error {
	if name == "" || len(name) > maxLinuxIfName {
		return fmt.Errorf("a Linux interface name has 1..%d bytes", maxLinuxIfName)
	}
	for _, r := range name {
		if r <= ' ' || r == '/' || r > 0x7e {
			return errors.New("a Linux interface name is printable ASCII without spaces or '/'")
		}
	}
	return nil
}

// CreateAFPacket makes a VPP interface on a Linux interface
// (af_packet_create_v3, ethernet mode, one rx and one tx queue) with MAC
// mac, and returns its sw_if_index; VPP creates it admin-down. VPP 25.02
// takes hw_addr as given when use_random_hw_addr is false (all zeros when
// it is left empty), so a nil mac asks VPP for a random 02:fe MAC, a new
// one at every creation. VPP does not make the Linux interface
// promiscuous: a MAC other than the Linux interface's gets unicast frames
// only where the link does not filter them (a veth); and setting an
// af_packet's MAC later (SetMAC) sets the Linux interface's too. An
// af_packet on that Linux interface that exists already
// (IF_ALREADY_EXISTS, -79) is ErrConflict naming its index, and is left as
// it is: whether it is the caller's to adopt only its tag can tell. A
// Linux interface VPP does not see (INVALID_INTERFACE, -71) is
// ErrNotFound. It fails with ErrUnsupported when VPP lacks the af_packet
// plugin.
func (c *Client) CreateAFPacket(ctx context.Context, hostIfName string, mac net.HardwareAddr) (uint32, error) {
	const op = "create af_packet"
	obj := afpObj(hostIfName)
	if err := validLinuxIfName(hostIfName); err != nil {
		return NoInterface, opErr(op, obj, ErrInvalid, err)
	}
	if mac != nil && len(mac) != 6 {
		return NoInterface, opErr(op, obj, ErrInvalid, fmt.Errorf("MAC %s is not a 6-byte Ethernet address", mac))
	}
	s, rctx, cancel, err := c.beginWith(ctx, FeatureAFPacket, op, obj)
	if err != nil {
		return NoInterface, err
	}
	defer cancel()
	req := &af_packet.AfPacketCreateV3{
		Mode:        af_packet.AF_PACKET_API_MODE_ETHERNET,
		HostIfName:  hostIfName,
		NumRxQueues: 1,
		NumTxQueues: 1,
	}
	if mac != nil {
		req.HwAddr = ethernet_types.NewMacAddress(mac)
	} else {
		req.UseRandomHwAddr = true
	}
	r, err := s.afp.AfPacketCreateV3(rctx, req)
	switch {
	case err == nil:
		return uint32(r.SwIfIndex), nil
	case retvalIs(err, api.IF_ALREADY_EXISTS):
		return NoInterface, opErr(op, obj, ErrConflict, fmt.Errorf("exists already as sw_if_index %d, left as it is (%w)", r.SwIfIndex, err))
	case retvalIs(err, api.INVALID_INTERFACE):
		return NoInterface, opErr(op, obj, ErrNotFound, fmt.Errorf("no Linux interface %q in VPP's network namespace (%w)", hostIfName, err))
	}
	return NoInterface, vppErr(op, obj, err)
}

// DeleteAFPacket deletes the af_packet interface on a Linux interface (VPP
// takes it out of its bridge domain). One already gone is success: VPP
// 25.02 answers SYSCALL_ERROR_1 (-11) for a name it has no interface on,
// which the driver confirms with a dump.
func (c *Client) DeleteAFPacket(ctx context.Context, hostIfName string) error {
	const op = "delete af_packet"
	obj := afpObj(hostIfName)
	if err := validLinuxIfName(hostIfName); err != nil {
		return opErr(op, obj, ErrInvalid, err)
	}
	s, rctx, cancel, err := c.beginWith(ctx, FeatureAFPacket, op, obj)
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.afp.AfPacketDelete(rctx, &af_packet.AfPacketDelete{HostIfName: hostIfName})
	if err == nil {
		return nil
	}
	if retvalIs(err, api.SYSCALL_ERROR_1) {
		all, derr := afPackets(rctx, s)
		if derr != nil {
			return opErr(op, obj, nil, derr)
		}
		for _, a := range all {
			if a.HostIfName == hostIfName {
				return vppErr(op, obj, err)
			}
		}
		return nil
	}
	return vppErr(op, obj, err)
}
