package vpp

// TEMPORARY: replaced by the issue-22-vpp branch at merge.

import (
	"context"
	"errors"
	"net/netip"
)

type VXLANTunnel struct {
	SwIfIndex uint32
	Src, Dst  netip.Addr
	VNI       uint32
}

func (c *Client) VXLANTunnels(ctx context.Context) ([]VXLANTunnel, error) { return nil, nil }
func (c *Client) CreateVXLANTunnel(ctx context.Context, src, dst netip.Addr, vni uint32) (uint32, error) {
	return 0, errors.New("stub")
}
func (c *Client) DeleteVXLANTunnel(ctx context.Context, t VXLANTunnel) error { return nil }

type AFPacket struct {
	SwIfIndex  uint32
	HostIfName string
}

func (c *Client) AFPackets(ctx context.Context) ([]AFPacket, error)                  { return nil, nil }
func (c *Client) CreateAFPacket(ctx context.Context, hostIfName string) (uint32, error) { return 0, nil }
func (c *Client) DeleteAFPacket(ctx context.Context, hostIfName string) error          { return nil }
func (c *Client) SupportsCrossHost() bool                                              { return false }
