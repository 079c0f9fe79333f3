package dpview

import (
	"context"
	"fmt"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/integration/vppsim"
)

// ClientName is the name VPP lists for this package's connection.
const ClientName = "uspace-dpview"

// VPP reads every interface (with its addresses and bridge domain),
// memif, memif socket filename, vhost-user interface, bridge domain and
// route of table 0 of the VPP at socket, on a connection made for the
// read.
func VPP(ctx context.Context, socket string) (vppsim.State, error) {
	c := vpp.Dial(vpp.Config{Socket: socket, ClientName: ClientName})
	defer c.Close()
	if err := c.WaitConnected(ctx); err != nil {
		return vppsim.State{}, fmt.Errorf("connect to VPP at %s: %w", socket, err)
	}
	st := vppsim.State{Running: true, Socket: socket}
	bds, err := c.BridgeDomains(ctx)
	if err != nil {
		return st, err
	}
	bdOf := map[uint32]uint32{}
	for _, bd := range bds {
		b := vppsim.BridgeDomain{ID: bd.ID, Tag: bd.Tag, Flood: bd.Flood, UUFlood: bd.UUFlood, Forward: bd.Forward,
			Learn: bd.Learn, ArpTerm: bd.ArpTerm, MacAge: bd.MacAge}
		for _, m := range bd.Members {
			b.Members = append(b.Members, m.SwIfIndex)
			bdOf[m.SwIfIndex] = bd.ID
		}
		st.BridgeDomains = append(st.BridgeDomains, b)
	}
	if st.Interfaces, err = interfaces(ctx, c, bdOf); err != nil {
		return st, err
	}
	if err := memifs(ctx, c, &st); err != nil {
		return st, err
	}
	vhosts, err := c.VhostUsersUntagged(ctx)
	if err != nil {
		return st, err
	}
	for _, v := range vhosts {
		st.VhostUsers = append(st.VhostUsers, vppsim.VhostUserState{SwIfIndex: v.SwIfIndex, Name: v.Name,
			SockFilename: v.SocketPath, IsServer: v.Server})
	}
	st.Routes, err = routes(ctx, c)
	return st, err
}

// routes reads the IPv4 and IPv6 routes of table 0; VPP does not say which
// it made itself, so Source stays empty.
func routes(ctx context.Context, c *vpp.Client) ([]vppsim.RouteState, error) {
	var out []vppsim.RouteState
	for _, v6 := range []bool{false, true} {
		rs, err := c.Routes(ctx, 0, v6)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			s := vppsim.RouteState{Prefix: r.Prefix.String()}
			for _, p := range r.Paths {
				ps := vppsim.PathState{Type: p.Kind.String(), SwIfIndex: p.SwIfIndex, Weight: p.Weight}
				if p.Gateway.IsValid() {
					ps.NextHop = p.Gateway.String()
				}
				s.Paths = append(s.Paths, ps)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

func interfaces(ctx context.Context, c *vpp.Client, bdOf map[uint32]uint32) ([]vppsim.InterfaceState, error) {
	ifs, err := c.Interfaces(ctx)
	if err != nil {
		return nil, err
	}
	var out []vppsim.InterfaceState
	for _, i := range ifs {
		is := vppsim.InterfaceState{SwIfIndex: i.SwIfIndex, Name: i.Name, DevType: i.DevType, Tag: i.Tag,
			AdminUp: i.AdminUp, LinkUp: i.LinkUp, MTU: [4]uint32{i.MTU}, BridgeDomain: bdOf[i.SwIfIndex]}
		if i.MAC != nil {
			is.MAC = i.MAC.String()
		}
		addrs, err := c.InterfaceAddresses(ctx, i.SwIfIndex)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			is.Addresses = append(is.Addresses, a.String())
		}
		out = append(out, is)
	}
	return out, nil
}

func memifs(ctx context.Context, c *vpp.Client, st *vppsim.State) error {
	ms, err := c.MemifsUntagged(ctx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		role := "master"
		if m.Role != vpp.MemifMaster {
			role = "slave"
		}
		st.Memifs = append(st.Memifs, vppsim.MemifState{SwIfIndex: m.SwIfIndex, Name: m.Name, ID: m.ID,
			SocketID: m.SocketID, Role: role})
	}
	socks, err := c.MemifSockets(ctx)
	if err != nil {
		return err
	}
	for _, s := range socks {
		st.MemifSockets = append(st.MemifSockets, vppsim.MemifSocket{ID: s.ID, Filename: s.Filename})
	}
	return nil
}
