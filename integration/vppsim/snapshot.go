package vppsim

import (
	"net/netip"
	"sort"

	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/fib_types"
	"go.fd.io/govpp/binapi/memif"
)

// State is a JSON-friendly snapshot of the simulated dataplane.
type State struct {
	Running       bool              `json:"running"`
	Generation    int               `json:"generation"`
	VpePID        uint32            `json:"vpePid"`
	Version       string            `json:"version"`
	Socket        string            `json:"socket"`
	Clients       int               `json:"clients"`
	Interfaces    []InterfaceState  `json:"interfaces"`
	MemifSockets  []MemifSocket     `json:"memifSockets"`
	Memifs        []MemifState      `json:"memifs"`
	VhostUsers    []VhostUserState  `json:"vhostUsers"`
	BridgeDomains []BridgeDomain    `json:"bridgeDomains"`
	Routes        []RouteState      `json:"routes"`
	MessageCounts map[string]uint64 `json:"messageCounts"`
}

// InterfaceState is one sw interface.
type InterfaceState struct {
	SwIfIndex    uint32    `json:"swIfIndex"`
	Name         string    `json:"name"`
	DevType      string    `json:"devType"`
	Tag          string    `json:"tag,omitempty"`
	AdminUp      bool      `json:"adminUp"`
	LinkUp       bool      `json:"linkUp"`
	MTU          [4]uint32 `json:"mtu"`
	MAC          string    `json:"mac,omitempty"`
	Addresses    []string  `json:"addresses,omitempty"`
	BridgeDomain uint32    `json:"bridgeDomain,omitempty"`
}

// MemifSocket is one memif socket filename.
type MemifSocket struct {
	ID        uint32 `json:"id"`
	Filename  string `json:"filename"`
	RefCount  int    `json:"refCount"`
	Listening bool   `json:"listening"`
}

// MemifState is one memif interface with its configured values.
type MemifState struct {
	SwIfIndex  uint32 `json:"swIfIndex"`
	Name       string `json:"name"`
	ID         uint32 `json:"id"`
	SocketID   uint32 `json:"socketId"`
	Role       string `json:"role"`
	Mode       string `json:"mode"`
	RingSize   uint32 `json:"ringSize"`
	BufferSize uint16 `json:"bufferSize"`
	RxQueues   uint8  `json:"rxQueues"`
	TxQueues   uint8  `json:"txQueues"`
}

// VhostUserState is one vhost-user interface.
type VhostUserState struct {
	SwIfIndex    uint32 `json:"swIfIndex"`
	Name         string `json:"name"`
	SockFilename string `json:"sockFilename"`
	IsServer     bool   `json:"isServer"`
}

// BridgeDomain is one bridge domain.
type BridgeDomain struct {
	ID      uint32   `json:"id"`
	Tag     string   `json:"tag,omitempty"`
	Flood   bool     `json:"flood"`
	UUFlood bool     `json:"uuFlood"`
	Forward bool     `json:"forward"`
	Learn   bool     `json:"learn"`
	ArpTerm bool     `json:"arpTerm"`
	MacAge  uint8    `json:"macAge"`
	Members []uint32 `json:"members"`
}

// RouteState is one route of table 0.
type RouteState struct {
	Table  uint32      `json:"table"`
	Prefix string      `json:"prefix"`
	Source string      `json:"source"` // api, interface, special
	Paths  []PathState `json:"paths"`
}

// PathState is one route path.
type PathState struct {
	Type      string `json:"type"`
	SwIfIndex uint32 `json:"swIfIndex"`
	NextHop   string `json:"nextHop,omitempty"`
	Weight    uint8  `json:"weight"`
}

func (w *world) sortedSockets() []*memifSocket {
	out := make([]*memifSocket, 0, len(w.sockets))
	for _, ms := range w.sockets {
		out = append(out, ms)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (w *world) sortedRoutes() []*route {
	out := make([]*route, 0, len(w.routes))
	for _, r := range w.routes {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].key.prefix, out[j].key.prefix
		if a.Addr() != b.Addr() {
			return a.Addr().Less(b.Addr())
		}
		return a.Bits() < b.Bits()
	})
	return out
}

func macString(m [6]byte) string {
	if m == ([6]byte{}) {
		return ""
	}
	return ethernet_types.MacAddress(m).String()
}

func nextHop(p fib_types.FibPath) string {
	var a netip.Addr
	if p.Proto == fib_types.FIB_API_PATH_NH_PROTO_IP6 {
		a = netip.AddrFrom16(p.Nh.Address.GetIP6())
	} else {
		a = netip.AddrFrom4(p.Nh.Address.GetIP4())
	}
	if a.IsUnspecified() {
		return ""
	}
	return a.String()
}

// Snapshot returns the current dataplane state.
func (s *Sim) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{
		Running:       s.running,
		Generation:    s.generation,
		VpePID:        s.pid,
		Version:       s.opts.Version,
		Socket:        s.opts.Socket,
		Clients:       len(s.clients),
		MessageCounts: map[string]uint64{},
	}
	for k, v := range s.counts {
		st.MessageCounts[k] = v
	}
	w := s.st
	if w == nil {
		return st
	}
	for _, i := range w.sortedIfaces() {
		is := InterfaceState{
			SwIfIndex: i.swIfIndex, Name: i.name, DevType: i.kind.devType(), Tag: i.tag,
			AdminUp: i.adminUp, LinkUp: i.linkUp, MTU: i.mtu, MAC: macString(i.mac), BridgeDomain: i.bdID,
		}
		for _, a := range i.addrs {
			is.Addresses = append(is.Addresses, a.String())
		}
		st.Interfaces = append(st.Interfaces, is)
		if m := i.memif; m != nil {
			role := "master"
			if m.role == memif.MEMIF_ROLE_API_SLAVE {
				role = "slave"
			}
			mode := "ethernet"
			if m.mode == memif.MEMIF_MODE_API_IP {
				mode = "ip"
			}
			st.Memifs = append(st.Memifs, MemifState{
				SwIfIndex: i.swIfIndex, Name: i.name, ID: m.id, SocketID: m.socketID, Role: role, Mode: mode,
				RingSize: m.ringSize, BufferSize: m.bufferSize, RxQueues: m.rxQueues, TxQueues: m.txQueues,
			})
		}
		if v := i.vhost; v != nil {
			st.VhostUsers = append(st.VhostUsers, VhostUserState{
				SwIfIndex: i.swIfIndex, Name: i.name, SockFilename: v.sockFilename, IsServer: v.isServer,
			})
		}
	}
	for _, ms := range w.sortedSockets() {
		st.MemifSockets = append(st.MemifSockets, MemifSocket{
			ID: ms.id, Filename: ms.filename, RefCount: ms.refCnt, Listening: ms.ln != nil,
		})
	}
	for _, bd := range w.sortedBDs() {
		b := BridgeDomain{
			ID: bd.id, Tag: bd.tag, Flood: bd.flood, UUFlood: bd.uuFlood, Forward: bd.forward,
			Learn: bd.learn, ArpTerm: bd.arpTerm, MacAge: bd.macAge, Members: []uint32{},
		}
		for _, m := range bd.members {
			b.Members = append(b.Members, m.swIfIndex)
		}
		st.BridgeDomains = append(st.BridgeDomains, b)
	}
	for _, r := range w.sortedRoutes() {
		rs := RouteState{Table: r.key.table, Prefix: r.key.prefix.String(), Source: r.source.String()}
		for _, p := range r.paths {
			rs.Paths = append(rs.Paths, PathState{
				Type:      fib_types.FibPathType(p.Type).String(),
				SwIfIndex: p.SwIfIndex,
				NextHop:   nextHop(p),
				Weight:    p.Weight,
			})
		}
		st.Routes = append(st.Routes, rs)
	}
	return st
}

// Interface returns the snapshot of one interface by name.
func (st State) Interface(name string) (InterfaceState, bool) {
	for _, i := range st.Interfaces {
		if i.Name == name {
			return i, true
		}
	}
	return InterfaceState{}, false
}
