package vppsim

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"

	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/memif"
)

// memifSocketFilenameAddDel follows memif_socket_filename_add_del() in
// VPP's memif.c.
func (w *world) memifSocketFilenameAddDel(isAdd bool, id uint32, filename string) int32 {
	if (id == 0 && !isAdd) || id == invalidIndex {
		return rvInvalidArgument
	}
	if !isAdd {
		ms := w.sockets[id]
		if ms == nil {
			return rvInvalidArgument // don't delete non-existent entries
		}
		if ms.refCnt > 0 {
			return rvUnexpectedIntfState
		}
		delete(w.sockets, id)
		return rvOK
	}
	if filename == "" {
		return rvInvalidArgument
	}
	if !filepath.IsAbs(filename) && !strings.HasPrefix(filename, abstractPrefix) {
		dir := filepath.Join(w.runtimeDir, filepath.Dir(filename))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return rvSyscallError1
		}
		filename = filepath.Join(w.runtimeDir, filename)
	}
	// An absolute filename in a missing directory is accepted, as VPP
	// 25.02 does: the master memif on it fails then (-14).
	if ms := w.sockets[id]; ms != nil {
		if ms.filename == filename {
			return rvOK // silently accept identical add
		}
		return rvEntryAlreadyExists
	}
	w.sockets[id] = &memifSocket{id: id, filename: filename}
	return rvOK
}

func (w *world) unusedSocketID() uint32 {
	for {
		id := w.rng.Uint32()
		if id == 0 || id == invalidIndex {
			continue
		}
		if _, used := w.sockets[id]; !used {
			return id
		}
	}
}

func hMemifSocketFilenameAddDel(s *Sim, _ *client, req *memif.MemifSocketFilenameAddDel) *memif.MemifSocketFilenameAddDelReply {
	if req.SocketID == 0 || req.SocketID == invalidIndex {
		return &memif.MemifSocketFilenameAddDelReply{Retval: rvInvalidArgument}
	}
	return &memif.MemifSocketFilenameAddDelReply{Retval: s.st.memifSocketFilenameAddDel(req.IsAdd, req.SocketID, req.SocketFilename)}
}

func hMemifSocketFilenameAddDelV2(s *Sim, _ *client, req *memif.MemifSocketFilenameAddDelV2) *memif.MemifSocketFilenameAddDelV2Reply {
	id := req.SocketID
	if id == 0 {
		return &memif.MemifSocketFilenameAddDelV2Reply{Retval: rvInvalidArgument}
	}
	if req.IsAdd && id == invalidIndex {
		id = s.st.unusedSocketID()
	}
	rv := s.st.memifSocketFilenameAddDel(req.IsAdd, id, req.SocketFilename)
	return &memif.MemifSocketFilenameAddDelV2Reply{Retval: rv, SocketID: id}
}

type memifArgs struct {
	role       memif.MemifRole
	mode       memif.MemifMode
	rxQueues   uint8
	txQueues   uint8
	id         uint32
	socketID   uint32
	ringSize   uint32
	bufferSize uint16
	noZeroCopy bool
	hwAddr     ethernet_types.MacAddress
	secret     string
}

// memifCreate follows vl_api_memif_create_t_handler + memif_create_if().
// On failure the reply's sw_if_index is 0, as VPP leaves it.
func (s *Sim) memifCreate(a memifArgs) (int32, uint32) {
	w := s.st
	ringSize := uint32(defaultMemifRingSize)
	if a.ringSize != 0 {
		ringSize = a.ringSize
	}
	if ringSize&(ringSize-1) != 0 {
		return rvInvalidArgument, 0
	}
	bufferSize := uint16(defaultMemifBufferSize)
	if a.bufferSize != 0 {
		bufferSize = a.bufferSize
	}
	isMaster := a.role == memif.MEMIF_ROLE_API_MASTER
	ms := w.sockets[a.socketID]
	if ms == nil {
		return rvInvalidArgument, 0
	}
	if rv := s.memifUseSocket(ms, a, isMaster); rv != rvOK {
		return rv, 0
	}

	rxq, txq := a.rxQueues, a.txQueues
	if rxq == 0 {
		rxq = memifDefaultRxTxQueues
	}
	if txq == 0 {
		txq = memifDefaultRxTxQueues
	}
	i := &iface{
		swIfIndex: w.allocSwIfIndex(),
		name:      fmt.Sprintf("memif%d/%d", a.socketID, a.id),
		kind:      kindMemif,
		ethernet:  a.mode == memif.MEMIF_MODE_API_ETHERNET,
		memif: &memifIf{
			id: a.id, socketID: a.socketID, role: a.role, mode: a.mode,
			ringSize: ringSize, bufferSize: bufferSize, rxQueues: rxq, txQueues: txq,
			zeroCopy: !isMaster && !a.noZeroCopy, secret: a.secret,
		},
	}
	if !isMaster {
		i.memif.role = memif.MEMIF_ROLE_API_SLAVE
	}
	// VPP 25.02 gives an IP-mode memif, which has no Ethernet class, link
	// MTU 0 and every per-protocol MTU 0 until one is set.
	if i.ethernet {
		i.linkMtu, i.mtu = defaultMTU, [4]uint32{defaultMTU, 0, 0, 0}
		if a.hwAddr != (ethernet_types.MacAddress{}) {
			i.mac = a.hwAddr
		} else {
			i.mac = w.randomMAC()
		}
	}
	w.ifaces[i.swIfIndex] = i
	// VPP announces every new interface (flags 0: admin and link down).
	w.events = append(w.events, pendingEvent{swIfIndex: i.swIfIndex})
	if w.memifByID[a.socketID] == nil {
		w.memifByID[a.socketID] = map[uint32]*iface{}
	}
	w.memifByID[a.socketID][a.id] = i
	return rvOK, i.swIfIndex
}

// memifUseSocket checks that a memif of role and mode a can use socket ms
// and takes a reference on it, listening on its file for the first master.
func (s *Sim) memifUseSocket(ms *memifSocket, a memifArgs, isMaster bool) int32 {
	w := s.st
	if ms.refCnt > 0 {
		// A socket file is either master or slave, not both.
		if ms.listener != isMaster {
			return rvSubifAlreadyExists
		}
		if w.memifByID[a.socketID][a.id] != nil {
			return rvSubifAlreadyExists
		}
	}
	if a.mode != memif.MEMIF_MODE_API_ETHERNET && a.mode != memif.MEMIF_MODE_API_IP {
		return rvSyscallError2 // "unsupported interface mode"
	}
	if ms.refCnt == 0 && isMaster {
		if len(ms.filename) >= sunPathMax {
			return rvSyscallError4
		}
		ln, err := listenMemif(ms.filename)
		if err != nil {
			// VPP 25.02 answers -14 whatever stops it listening, a regular
			// file in the way included.
			s.log.Warn("vppsim: memif listener", "path", ms.filename, "err", err)
			// VPP 25.02's error path drops a reference it never took (its
			// `show memif` then counts 4294967295 listeners): the next
			// master on the socket "succeeds" without listening, and the
			// socket filename may then be deleted under it (measured).
			ms.refCnt--
			ms.listener = true
			return rvSyscallError4
		}
		ms.ln = ln
	}
	if ms.refCnt == 0 {
		ms.listener = isMaster
	}
	ms.refCnt++
	return rvOK
}

// abstractPrefix starts a socket filename that VPP 25.02 opens as an
// abstract socket: "abstract:<name>[,netns_name=<netns>]", the netns a path
// or a name under /var/run/netns/ (measured: both work, and a namespace
// that cannot be entered fails the master with -14).
const abstractPrefix = "abstract:"

// listenMemif listens where a master memif's socket filename says: a file,
// or an abstract socket in VPP's own or the named network namespace.
func listenMemif(filename string) (*socketListener, error) {
	spec, abstract := strings.CutPrefix(filename, abstractPrefix)
	if !abstract {
		return listenSocketFile("unixpacket", filename)
	}
	name, netns, inNetns := strings.Cut(spec, ",netns_name=")
	listen := func() (*socketListener, error) {
		ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: "@" + name, Net: "unixpacket"})
		if err != nil {
			return nil, err
		}
		l := &socketListener{ln: ln, done: make(chan struct{})}
		go l.acceptLoop()
		return l, nil
	}
	if !inNetns {
		return listen()
	}
	if !filepath.IsAbs(netns) {
		netns = filepath.Join("/var/run/netns", netns)
	}
	var l *socketListener
	err := ns.WithNetNSPath(netns, func(ns.NetNS) error {
		var err error
		l, err = listen()
		return err
	})
	return l, err
}

func hMemifCreate(s *Sim, _ *client, req *memif.MemifCreate) *memif.MemifCreateReply {
	rv, idx := s.memifCreate(memifArgs{
		role: req.Role, mode: req.Mode, rxQueues: req.RxQueues, txQueues: req.TxQueues,
		id: req.ID, socketID: req.SocketID, ringSize: req.RingSize, bufferSize: req.BufferSize,
		noZeroCopy: req.NoZeroCopy, hwAddr: req.HwAddr, secret: req.Secret,
	})
	return &memif.MemifCreateReply{Retval: rv, SwIfIndex: interface_types.InterfaceIndex(idx)}
}

func hMemifCreateV2(s *Sim, _ *client, req *memif.MemifCreateV2) *memif.MemifCreateV2Reply {
	rv, idx := s.memifCreate(memifArgs{
		role: req.Role, mode: req.Mode, rxQueues: req.RxQueues, txQueues: req.TxQueues,
		id: req.ID, socketID: req.SocketID, ringSize: req.RingSize, bufferSize: req.BufferSize,
		noZeroCopy: req.NoZeroCopy, hwAddr: req.HwAddr, secret: req.Secret,
	})
	return &memif.MemifCreateV2Reply{Retval: rv, SwIfIndex: interface_types.InterfaceIndex(idx)}
}

func hMemifDelete(s *Sim, _ *client, req *memif.MemifDelete) *memif.MemifDeleteReply {
	w := s.st
	i := w.ifaces[uint32(req.SwIfIndex)]
	if i == nil || i.memif == nil {
		return &memif.MemifDeleteReply{Retval: rvInvalidSwIfIndex}
	}
	if ms := w.sockets[i.memif.socketID]; ms != nil {
		ms.refCnt--
		if ms.refCnt <= 0 {
			ms.refCnt = 0
			if ms.ln != nil {
				// VPP 25.02 stops listening but leaves the socket file.
				ms.ln.close(false)
				ms.ln = nil
			}
		}
	}
	w.removeIface(i)
	return &memif.MemifDeleteReply{}
}

// hMemifDump: like VPP, ring_size and buffer_size report the values
// negotiated on connection (run-time values); an interface that never
// connected reports ring_size 1 (1 << 0) and buffer_size 0. The configured
// values are in the JSON snapshot.
func hMemifDump(s *Sim, _ *client, _ *memif.MemifDump) []*memif.MemifDetails {
	w := s.st
	var out []*memif.MemifDetails
	for _, i := range w.sortedIfaces() {
		if i.memif == nil {
			continue
		}
		out = append(out, &memif.MemifDetails{
			SwIfIndex:  interface_types.InterfaceIndex(i.swIfIndex),
			HwAddr:     i.mac,
			ID:         i.memif.id,
			Role:       i.memif.role,
			Mode:       i.memif.mode,
			ZeroCopy:   i.memif.zeroCopy,
			SocketID:   i.memif.socketID,
			RingSize:   1,
			BufferSize: 0,
			Flags:      w.flags(i),
			IfName:     i.name,
		})
	}
	return out
}

func hMemifSocketFilenameDump(s *Sim, _ *client, _ *memif.MemifSocketFilenameDump) []*memif.MemifSocketFilenameDetails {
	var out []*memif.MemifSocketFilenameDetails
	for _, ms := range s.st.sortedSockets() {
		out = append(out, &memif.MemifSocketFilenameDetails{SocketID: ms.id, SocketFilename: ms.filename})
	}
	return out
}
