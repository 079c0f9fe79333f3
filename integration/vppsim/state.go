package vppsim

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/fib_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/memif"
)

const invalidIndex = ^uint32(0)

// ifKind is the device class of a simulated interface.
type ifKind int

const (
	kindLocal ifKind = iota
	kindMemif
	kindVhost
	kindAFPacket
	kindVXLAN
)

func (k ifKind) devType() string {
	switch k {
	case kindMemif:
		return "memif"
	case kindVhost:
		return "vhost-user"
	case kindAFPacket:
		return "af-packet"
	case kindVXLAN:
		return "VXLAN"
	default:
		return "local"
	}
}

type iface struct {
	swIfIndex uint32
	name      string
	kind      ifKind
	ethernet  bool // has an ethernet hw class (MAC, sw MTU)
	tag       string
	adminUp   bool
	linkUp    bool
	linkMtu   uint16
	mtu       [4]uint32
	mac       [6]byte
	addrs     []netip.Prefix
	bdID      uint32 // 0 = not in a bridge domain
	shg       uint8
	memif     *memifIf
	vhost     *vhostIf
	afp       *afPacketIf
	vxlan     *vxlanIf
}

type memifSocket struct {
	id       uint32
	filename string
	refCnt   int
	listener bool // role of the interfaces on it (master = listener)
	ln       *socketListener
}

type memifIf struct {
	id         uint32
	socketID   uint32
	role       memif.MemifRole
	mode       memif.MemifMode
	ringSize   uint32
	bufferSize uint16
	rxQueues   uint8
	txQueues   uint8
	zeroCopy   bool
	secret     string
}

type vhostIf struct {
	devInstance  uint32
	sockFilename string
	isServer     bool
	gso          bool
	packed       bool
	eventIdx     bool
	ln           *socketListener
}

type bridgeDomain struct {
	id      uint32
	seq     uint64 // creation order (VPP dumps by bd_index)
	flood   bool
	uuFlood bool
	forward bool
	learn   bool
	arpTerm bool
	arpUfwd bool
	macAge  uint8
	tag     string
	members []bdMember
}

type bdMember struct {
	swIfIndex uint32
	shg       uint8
}

type routeSource int

const (
	srcSpecial   routeSource = iota // VPP's own drop/multicast/... entries
	srcInterface                    // attached / local routes of interface addresses
	srcAPI                          // added through ip_route_add_del
)

func (s routeSource) String() string {
	switch s {
	case srcInterface:
		return "interface"
	case srcAPI:
		return "api"
	default:
		return "special"
	}
}

type routeKey struct {
	table  uint32
	prefix netip.Prefix
}

type route struct {
	key    routeKey
	source routeSource
	paths  []fib_types.FibPath
	// shown is the prefix ip_route_dump reports when it is not the key's:
	// VPP 25.02 reports an address's attached route as the address itself
	// with the subnet's length (10.2.2.2/24, not 10.2.2.0/24).
	shown netip.Prefix
	// under is the entry of VPP's own source that an API route hides
	// (the default route's drop): VPP shows it again when the API route
	// goes.
	under *route
}

// pendingEvent is an interface event to deliver after the request is
// answered.
type pendingEvent struct {
	swIfIndex uint32
	flags     interface_types.IfStatusFlags
	deleted   bool
}

func (e pendingEvent) toMsg(pid uint32) api.Message {
	return &interfaces.SwInterfaceEvent{
		PID:       pid,
		SwIfIndex: interface_types.InterfaceIndex(e.swIfIndex),
		Flags:     e.flags,
		Deleted:   e.deleted,
	}
}

// world is the dataplane state of one simulator generation.
type world struct {
	runtimeDir string
	rng        *rand.Rand

	ifaces  map[uint32]*iface
	freeIdx []uint32 // freed sw_if_indexes, reused LIFO like VPP's pools
	nextIdx uint32

	sockets map[uint32]*memifSocket
	// memifByID indexes memifs by socket id and memif id.
	memifByID map[uint32]map[uint32]*iface
	// vhostByPath indexes vhost-user interfaces by socket path.
	vhostByPath map[string]*iface

	vhostFree []uint32
	vhostNext uint32

	bds   map[uint32]*bridgeDomain
	bdSeq uint64

	routes map[routeKey]*route

	events []pendingEvent
	macSeq uint32

	tun tunnels // af_packet and VXLAN (tunnels.go)
}

func newWorld(runtimeDir string, generation int) *world {
	w := &world{
		runtimeDir:  runtimeDir,
		rng:         rand.New(rand.NewPCG(uint64(generation), 0x5eed)),
		ifaces:      map[uint32]*iface{},
		sockets:     map[uint32]*memifSocket{},
		memifByID:   map[uint32]map[uint32]*iface{},
		vhostByPath: map[string]*iface{},
		bds:         map[uint32]*bridgeDomain{},
		routes:      map[routeKey]*route{},
	}
	// local0 always exists, admin down, no MAC.
	w.ifaces[0] = &iface{swIfIndex: 0, name: "local0", kind: kindLocal}
	w.nextIdx = 1
	// memif socket id 0 is pre-registered to <runtime-dir>/memif.sock.
	w.sockets[0] = &memifSocket{id: 0, filename: filepath.Join(runtimeDir, "memif.sock")}
	// VPP's table 0 special entries.
	for _, p := range []string{"0.0.0.0/0", "0.0.0.0/32", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32", "::/0", "fe80::/10"} {
		pfx := netip.MustParsePrefix(p)
		typ := fib_types.FIB_API_PATH_TYPE_DROP
		if p == "fe80::/10" {
			typ = fib_types.FIB_API_PATH_TYPE_LOCAL
		}
		w.routes[routeKey{0, pfx}] = &route{
			key:    routeKey{0, pfx},
			source: srcSpecial,
			paths:  []fib_types.FibPath{{SwIfIndex: invalidIndex, Weight: 1, Type: typ, Proto: protoOf(pfx)}},
		}
	}
	return w
}

func protoOf(p netip.Prefix) fib_types.FibPathNhProto {
	if p.Addr().Is4() {
		return fib_types.FIB_API_PATH_NH_PROTO_IP4
	}
	return fib_types.FIB_API_PATH_NH_PROTO_IP6
}

func (w *world) allocSwIfIndex() uint32 {
	if n := len(w.freeIdx); n > 0 {
		idx := w.freeIdx[n-1]
		w.freeIdx = w.freeIdx[:n-1]
		return idx
	}
	idx := w.nextIdx
	w.nextIdx++
	return idx
}

func (w *world) allocVhostInstance() uint32 {
	if n := len(w.vhostFree); n > 0 {
		i := w.vhostFree[n-1]
		w.vhostFree = w.vhostFree[:n-1]
		return i
	}
	i := w.vhostNext
	w.vhostNext++
	return i
}

// randomMAC returns a VPP-style locally administered MAC 02:fe:xx:xx:xx:xx.
func (w *world) randomMAC() [6]byte {
	w.macSeq++
	r := w.rng.Uint32() ^ w.macSeq
	return [6]byte{0x02, 0xfe, byte(r >> 24), byte(r >> 16), byte(r >> 8), byte(r)}
}

func (w *world) flags(i *iface) interface_types.IfStatusFlags {
	var f interface_types.IfStatusFlags
	if i.adminUp {
		f |= interface_types.IF_STATUS_API_FLAG_ADMIN_UP
	}
	if i.linkUp {
		f |= interface_types.IF_STATUS_API_FLAG_LINK_UP
	}
	return f
}

func (w *world) takeEvents() []pendingEvent {
	ev := w.events
	w.events = nil
	return ev
}

// removeIface deletes an interface and what VPP removes with it (bridge
// membership, addresses and the routes they created; not the routes added
// through the API), then frees its index for reuse.
func (w *world) removeIface(i *iface) {
	if i.bdID != 0 {
		w.bdRemoveMember(i.bdID, i.swIfIndex)
	}
	for _, a := range i.addrs {
		w.delInterfaceRoutes(i.swIfIndex, a)
	}
	// Routes added through the API stay, as in VPP 25.02: unresolved drop
	// entries whose paths still name the freed index (which a new
	// interface may take), until deleted.
	if m := i.memif; m != nil {
		delete(w.memifByID[m.socketID], m.id)
		if len(w.memifByID[m.socketID]) == 0 {
			delete(w.memifByID, m.socketID)
		}
	}
	if v := i.vhost; v != nil {
		delete(w.vhostByPath, v.sockFilename)
	}
	w.tun.forget(i)
	delete(w.ifaces, i.swIfIndex)
	w.freeIdx = append(w.freeIdx, i.swIfIndex)
	w.events = append(w.events, pendingEvent{swIfIndex: i.swIfIndex, deleted: true})
}

func (w *world) bdRemoveMember(bdID, swIfIndex uint32) {
	bd := w.bds[bdID]
	if bd == nil {
		return
	}
	for j, m := range bd.members {
		if m.swIfIndex == swIfIndex {
			bd.members = append(bd.members[:j], bd.members[j+1:]...)
			break
		}
	}
}

func (w *world) sortedBDs() []*bridgeDomain {
	out := make([]*bridgeDomain, 0, len(w.bds))
	for _, bd := range w.bds {
		out = append(out, bd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

func (w *world) sortedIfaces() []*iface {
	out := make([]*iface, 0, len(w.ifaces))
	for _, i := range w.ifaces {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].swIfIndex < out[b].swIfIndex })
	return out
}

// shutdown releases OS resources. clean removes the socket files the
// dataplane created; otherwise they stay behind like after a crash.
func (w *world) shutdown(clean bool) {
	for _, ms := range w.sockets {
		if ms.ln != nil {
			ms.ln.close(clean)
			ms.ln = nil
		}
	}
	for _, i := range w.ifaces {
		if i.vhost != nil && i.vhost.ln != nil {
			i.vhost.ln.close(clean)
			i.vhost.ln = nil
		}
	}
}

// socketListener is a socket the simulated dataplane listens on: a memif
// master socket (SOCK_SEQPACKET; a file or abstract) or a vhost-user server
// socket (SOCK_STREAM). Peers that connect are accepted and held open until
// the listener closes; no data is exchanged.
type socketListener struct {
	path  string // "" for an abstract socket: no file
	ln    *net.UnixListener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

// listenSocketFile listens on path. Like VPP, a stale socket at the path is
// replaced; any other existing file is an error (errExist).
func listenSocketFile(network, path string) (*socketListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, errExist
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.ListenUnix(network, &net.UnixAddr{Name: path, Net: network})
	if err != nil {
		return nil, err
	}
	l := &socketListener{path: path, ln: ln, done: make(chan struct{})}
	go l.acceptLoop()
	return l, nil
}

func (l *socketListener) acceptLoop() {
	defer close(l.done)
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
}

// close stops listening; unlink controls whether the socket file is removed.
func (l *socketListener) close(unlink bool) {
	unlink = unlink && l.path != ""
	l.ln.SetUnlinkOnClose(unlink)
	_ = l.ln.Close()
	<-l.done
	l.mu.Lock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
	l.mu.Unlock()
	if unlink {
		_ = os.Remove(l.path)
	}
}

type simError string

func (e simError) Error() string { return string(e) }

const errExist = simError("file exists and is not a socket")
