package vppstate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/schema"
)

// bridgeOwner owns the bridge domains uspace created, so only those are
// removed when their last member goes.
const bridgeOwner = "bridge"

// Owner is the VPP tag owner of the interface made for an intent key: a
// hash, because keys do not fit in VPP's 64-byte tags.
func Owner(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:12])
}

// Spec is the desired state of one interface.
type Spec struct {
	Owner     string
	Type      schema.IfType
	Memif     *schema.MemifSpec
	Vhost     *schema.VhostSpec
	MTU       uint32
	MAC       string
	Addresses []string // CIDRs
	Routes    []schema.Route
	Bridge    uint32 // 0: not in a bridge domain
	// SplitHorizon is the interface's split-horizon group in Bridge: a
	// frame entering through a group is never flooded back into it, so
	// the full mesh of tunnels between hosts forms no loop.
	SplitHorizon uint8
	Tunnel       *Tunnel // IfTypeVXLAN
	HostIf       string  // IfTypeAFPacket: the Linux interface
}

// Tunnel is a VXLAN tunnel's immutable settings.
type Tunnel struct {
	Src, Dst netip.Addr
	VNI      uint32
}

// State is what VPP holds, as far as the agent needs it.
type State struct {
	vpp    *vpp.Client
	ifs    map[uint32]vpp.Interface
	memifs map[uint32]vpp.Memif
	vhosts map[uint32]vpp.VhostUser
	vxlans map[uint32]vpp.VXLANTunnel
	afpkts map[uint32]vpp.AFPacket
	addrs  map[uint32][]netip.Prefix // read lazily, only where a spec has addresses
	routes map[uint32][]schema.Route // applied through each interface (routes.go)
	// routesRead is set once this view has read back the routes through
	// its interfaces from VPP (routes.go, adoptRoutes).
	routesRead bool
	byOwner    map[string]uint32
	sockets    map[string]uint32 // memif socket filename -> socket id
	bds        map[uint32]vpp.BridgeDomain
	bdOf       map[uint32]membership // sw_if_index -> the bridge domain it is in
	// socketRoot bounds the socket files this agent removes: an intent
	// can never make it delete a file elsewhere.
	socketRoot string
}

// Load reads VPP's state with dumps.
func Load(ctx context.Context, c *vpp.Client, socketRoot string) (*State, error) {
	s := &State{vpp: c, socketRoot: socketRoot,
		ifs: map[uint32]vpp.Interface{}, memifs: map[uint32]vpp.Memif{}, vhosts: map[uint32]vpp.VhostUser{},
		vxlans: map[uint32]vpp.VXLANTunnel{}, afpkts: map[uint32]vpp.AFPacket{},
		addrs: map[uint32][]netip.Prefix{}, routes: map[uint32][]schema.Route{},
		byOwner: map[string]uint32{}, sockets: map[string]uint32{}, bds: map[uint32]vpp.BridgeDomain{}, bdOf: map[uint32]membership{}}
	// The dumps go out together, each on a stream of its own over the one
	// connection: VPP answers them one after the other without waiting
	// for this process between them (an agent's start read them in
	// sequence, seven round trips, before it could reconcile anything).
	var (
		ifs    []vpp.Interface
		memifs []vpp.Memif
		socks  []vpp.MemifSocket
		vhosts []vpp.VhostUser
		bds    []vpp.BridgeDomain
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { ifs, err = c.Interfaces(gctx); return err })
	// Tags, MACs and flags come from the interface dump alone.
	g.Go(func() (err error) { memifs, err = c.MemifsUntagged(gctx); return err })
	g.Go(func() (err error) { socks, err = c.MemifSockets(gctx); return err })
	g.Go(func() (err error) { vhosts, err = c.VhostUsersUntagged(gctx); return err })
	g.Go(func() (err error) { bds, err = c.BridgeDomains(gctx); return err })
	g.Go(func() error { return s.loadCrossHost(gctx) })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, i := range ifs {
		s.ifs[i.SwIfIndex] = i
		if owner, ok := i.Owner(); ok && owner != bridgeOwner {
			s.byOwner[owner] = i.SwIfIndex
		}
	}
	for _, m := range memifs {
		m.Tag = s.ifs[m.SwIfIndex].Tag
		s.memifs[m.SwIfIndex] = m
	}
	for _, so := range socks {
		s.sockets[so.Filename] = so.ID
	}
	for _, v := range vhosts {
		i := s.ifs[v.SwIfIndex]
		v.MAC, v.AdminUp, v.LinkUp, v.Tag = i.MAC, i.AdminUp, i.LinkUp, i.Tag
		s.vhosts[v.SwIfIndex] = v
	}
	for _, bd := range bds {
		s.bds[bd.ID] = bd
		for _, m := range bd.Members {
			s.bdOf[m.SwIfIndex] = membership{bd: bd.ID, shg: m.SHG}
		}
	}
	return s, nil
}

// Lookup returns the interface owned by owner.
func (s *State) Lookup(owner string) (vpp.Interface, bool) {
	idx, ok := s.byOwner[owner]
	if !ok {
		return vpp.Interface{}, false
	}
	i, ok := s.ifs[idx]
	return i, ok
}

// Owners lists the owners of the uspace interfaces present in VPP.
func (s *State) Owners() []string {
	owners := make([]string, 0, len(s.byOwner))
	for o := range s.byOwner {
		owners = append(owners, o)
	}
	return owners
}

// Ensure converges the interface owned by spec.Owner to spec and returns its
// sw_if_index. What already matches is left alone; an interface whose
// immutable settings differ is re-created.
func (s *State) Ensure(ctx context.Context, spec Spec) (uint32, error) {
	if idx, ok := s.byOwner[spec.Owner]; ok && !s.matches(idx, spec) {
		if err := s.Remove(ctx, spec.Owner); err != nil {
			return 0, err
		}
	}
	idx, ok := s.byOwner[spec.Owner]
	if !ok {
		var err error
		if idx, err = s.create(ctx, spec); err != nil {
			return 0, err
		}
	}
	if err := s.converge(ctx, idx, spec); err != nil {
		return idx, err
	}
	return idx, nil
}

// Creates says whether Ensure would create spec's interface: VPP has none
// for its owner, or one whose immutable settings differ.
func (s *State) Creates(spec Spec) bool {
	idx, ok := s.byOwner[spec.Owner]
	return !ok || !s.matches(idx, spec)
}

// matches reports whether the existing interface has spec's immutable
// settings (type, socket, role, mode, id).
func (s *State) matches(idx uint32, spec Spec) bool {
	switch spec.Type {
	case schema.IfTypeMemif:
		m, ok := s.memifs[idx]
		if !ok {
			return false
		}
		id, ok := s.sockets[SocketFilename(spec.Memif)]
		return ok && m.SocketID == id && m.ID == spec.Memif.ID &&
			m.Role == memifRole(spec.Memif.Role) && m.Mode == memifMode(spec.Memif.Mode)
	case schema.IfTypeVhostUser:
		v, ok := s.vhosts[idx]
		return ok && v.SocketPath == spec.Vhost.SocketPath && v.Server == (spec.Vhost.Mode == schema.VhostServer)
	case schema.IfTypeVXLAN:
		t, ok := s.vxlans[idx]
		return ok && spec.Tunnel != nil && t.Src == spec.Tunnel.Src && t.Dst == spec.Tunnel.Dst && t.VNI == spec.Tunnel.VNI
	case schema.IfTypeAFPacket:
		a, ok := s.afpkts[idx]
		return ok && a.HostIfName == spec.HostIf
	}
	return false
}

func memifRole(r schema.MemifRole) vpp.MemifRole {
	if r == schema.MemifSlave {
		return vpp.MemifSlave
	}
	return vpp.MemifMaster
}

func memifMode(m schema.MemifMode) vpp.MemifMode {
	switch m {
	case schema.MemifIP:
		return vpp.MemifIP
	}
	return vpp.MemifEthernet
}

// mac is the MAC spec asks for, nil when it names none or the interface
// cannot have one: an IP-mode memif has no L2 address, and VPP answers -9
// (Unimplemented) to setting it.
func (spec Spec) mac() (net.HardwareAddr, error) {
	if spec.MAC == "" || (spec.Memif != nil && spec.Memif.Mode != "" && spec.Memif.Mode != schema.MemifEthernet) {
		return nil, nil
	}
	mac, err := net.ParseMAC(spec.MAC)
	if err != nil {
		return nil, fmt.Errorf("MAC of %s: %w", spec.Owner, err)
	}
	return mac, nil
}

func (s *State) create(ctx context.Context, spec Spec) (uint32, error) {
	mac, err := spec.mac()
	if err != nil {
		return 0, fmt.Errorf("create interface: %w", err)
	}
	var i vpp.Interface
	switch spec.Type {
	case schema.IfTypeMemif:
		m := spec.Memif
		filename := SocketFilename(m)
		if err := s.socketDir(filename); err != nil {
			return 0, err
		}
		sid, err := s.socketID(ctx, filename)
		if err != nil {
			return 0, err
		}
		mf, err := s.vpp.CreateMemif(ctx, spec.memif(sid, mac))
		if err != nil {
			// No memif, so nothing would ever release the socket filename
			// registered for it: drop it now unless another memif uses it.
			return 0, errors.Join(err, s.releaseSocket(ctx, sid, m.Role == schema.MemifMaster))
		}
		s.memifs[mf.SwIfIndex] = mf
		i = memifIf(mf)
	case schema.IfTypeVhostUser:
		if err := s.socketDir(spec.Vhost.SocketPath); err != nil {
			return 0, err
		}
		v, err := s.vpp.CreateVhostUser(ctx, vpp.VhostUserSpec{Owner: spec.Owner, SocketPath: spec.Vhost.SocketPath,
			Server: spec.Vhost.Mode == schema.VhostServer, MAC: mac})
		if err != nil {
			return 0, err
		}
		s.vhosts[v.SwIfIndex] = v
		i = vpp.Interface{SwIfIndex: v.SwIfIndex, Name: v.Name, Tag: v.Tag, MAC: v.MAC, AdminUp: v.AdminUp}
	case schema.IfTypeVXLAN, schema.IfTypeAFPacket:
		if i, err = s.createCrossHost(ctx, spec); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("create interface for %s: unknown type %q", spec.Owner, spec.Type)
	}
	s.created(spec.Owner, i)
	return i.SwIfIndex, nil
}

// memif is the driver's spec of the memif spec asks for, on socket id sid.
func (spec Spec) memif(sid uint32, mac net.HardwareAddr) vpp.MemifSpec {
	m := spec.Memif
	return vpp.MemifSpec{Owner: spec.Owner, SocketID: sid, ID: m.ID,
		Role: memifRole(m.Role), Mode: memifMode(m.Mode), RingSize: m.RingSize, BufferSize: m.BufferSize, MAC: mac}
}

// memifIf is the interface a memif is.
func memifIf(mf vpp.Memif) vpp.Interface {
	return vpp.Interface{SwIfIndex: mf.SwIfIndex, Name: mf.Name, Tag: mf.Tag, MAC: mf.MAC, AdminUp: mf.AdminUp}
}

// created records an interface just made for owner: the single and the
// bulk create paths (bulk.go) both end here.
func (s *State) created(owner string, i vpp.Interface) {
	s.ifs[i.SwIfIndex] = i
	s.byOwner[owner] = i.SwIfIndex
	// A new interface has no addresses: no dump needed to know it.
	s.addrs[i.SwIfIndex] = nil
}

// converge sets the mutable settings that differ.
func (s *State) converge(ctx context.Context, idx uint32, spec Spec) error {
	cur := s.ifs[idx]
	defer func() { s.ifs[idx] = cur }()
	if spec.MTU != 0 && cur.MTU != spec.MTU {
		if err := s.vpp.SetMTU(ctx, idx, spec.MTU); err != nil {
			return err
		}
		cur.MTU = spec.MTU
	}
	mac, err := spec.mac()
	if err != nil {
		return fmt.Errorf("set MAC: %w", err)
	}
	if mac != nil {
		if !bytes.Equal(cur.MAC, mac) {
			if err := s.vpp.SetMAC(ctx, idx, mac); err != nil {
				return err
			}
			cur.MAC = mac
		}
	}
	if err := s.convergeAddresses(ctx, idx, spec.Addresses); err != nil {
		return err
	}
	if err := s.convergeBridge(ctx, idx, spec.Bridge, spec.SplitHorizon); err != nil {
		return err
	}
	if !cur.AdminUp {
		if err := s.vpp.SetAdminUp(ctx, idx, true); err != nil {
			return err
		}
		cur.AdminUp = true
	}
	return s.convergeRoutes(ctx, idx, spec.Routes)
}

func (s *State) convergeAddresses(ctx context.Context, idx uint32, cidrs []string) error {
	if _, known := s.addrs[idx]; len(cidrs) == 0 && !known {
		return nil
	}
	have, err := s.addresses(ctx, idx)
	if err != nil {
		return err
	}
	want := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("address %q: %w", c, err)
		}
		want = append(want, p)
	}
	for _, p := range want {
		if !slices.Contains(have, p) {
			if err := s.vpp.AddAddress(ctx, idx, p); err != nil {
				return err
			}
			have = append(have, p)
		}
	}
	for _, p := range slices.Clone(have) {
		if !slices.Contains(want, p) {
			if err := s.vpp.DeleteAddress(ctx, idx, p); err != nil {
				return err
			}
			have = slices.DeleteFunc(have, func(x netip.Prefix) bool { return x == p })
		}
	}
	s.addrs[idx] = have
	return nil
}

// Remove deletes the interface owned by owner and what only it used: its
// routes, its bridge domain membership (and the domain when it empties),
// its memif socket filename and socket file. Absent is not an error.
func (s *State) Remove(ctx context.Context, owner string) error {
	idx, ok := s.byOwner[owner]
	if !ok {
		return nil
	}
	if id, in := s.bridgeOf(idx); in {
		if err := s.detach(ctx, idx, id); err != nil {
			return err
		}
	}
	// VPP keeps routes after their interface goes (unresolved, on an index
	// a new interface may take): they go first.
	if err := s.removeRoutes(ctx, idx); err != nil {
		return err
	}
	if err := s.deleteIf(ctx, idx); err != nil {
		return err
	}
	delete(s.byOwner, owner)
	delete(s.ifs, idx)
	delete(s.addrs, idx)
	delete(s.routes, idx)
	return nil
}

func (s *State) deleteIf(ctx context.Context, idx uint32) error {
	if m, ok := s.memifs[idx]; ok {
		if err := s.vpp.DeleteMemif(ctx, idx); err != nil {
			return err
		}
		delete(s.memifs, idx)
		return s.releaseSocket(ctx, m.SocketID, m.Role == vpp.MemifMaster)
	}
	if v, ok := s.vhosts[idx]; ok {
		if err := s.vpp.DeleteVhostUser(ctx, idx); err != nil {
			return err
		}
		delete(s.vhosts, idx)
		if !v.Server {
			return nil // the file is the peer's listening socket
		}
		return s.removeSocketFile(v.SocketPath)
	}
	if ok, err := s.deleteCrossHost(ctx, idx); ok || err != nil {
		return err
	}
	return fmt.Errorf("delete interface %d: neither memif, vhost-user, VXLAN tunnel nor af_packet", idx)
}
