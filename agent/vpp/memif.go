package vpp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ethernet_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/memif"
)

// MemifRole is the role of a memif: the master listens on the socket.
type MemifRole uint8

const (
	MemifMaster MemifRole = iota
	MemifSlave
)

func (r MemifRole) String() string {
	if r == MemifSlave {
		return "slave"
	}
	return "master"
}

// MemifMode is the memif interface mode.
type MemifMode uint8

const (
	MemifEthernet MemifMode = iota
	MemifIP
	MemifPuntInject
)

func (m MemifMode) String() string {
	switch m {
	case MemifIP:
		return "ip"
	case MemifPuntInject:
		return "punt/inject"
	}
	return "ethernet"
}

// sunPathMax is the size of sockaddr_un.sun_path, NUL included.
const sunPathMax = 108

// MemifSocket is a memif socket filename registered in VPP.
type MemifSocket struct {
	ID       uint32
	Filename string
}

// MemifSpec describes a memif to create.
type MemifSpec struct {
	Owner      string // tag owner, required
	SocketID   uint32 // from EnsureMemifSocket (0 = VPP's default socket)
	ID         uint32 // memif id, unique per socket
	Role       MemifRole
	Mode       MemifMode
	RingSize   uint32 // 0 = VPP default (1024); a power of 2
	BufferSize uint16 // 0 = VPP default (2048)
	RxQueues   uint8  // 0 = 1
	TxQueues   uint8  // 0 = 1
	Secret     string
	MAC        net.HardwareAddr // nil = VPP picks one (ethernet mode)
}

// Memif is a memif interface as VPP reports it.
type Memif struct {
	SwIfIndex uint32
	Name      string // memif<socket-id>/<id>
	SocketID  uint32
	ID        uint32
	Role      MemifRole
	Mode      MemifMode
	MAC       net.HardwareAddr
	AdminUp   bool
	LinkUp    bool
	Tag       string
}

// Owner returns the uspace owner recorded in the memif's tag.
func (m Memif) Owner() (string, bool) { return TagOwner(m.Tag) }

func memifObj(socketID, id uint32) string { return fmt.Sprintf("socket %d id %d", socketID, id) }

// MemifSockets lists the registered memif socket filenames (id 0 is VPP's
// default socket).
func (c *Client) MemifSockets(ctx context.Context) ([]MemifSocket, error) {
	s, rctx, cancel, err := c.begin(ctx, "dump memif sockets", "")
	if err != nil {
		return nil, err
	}
	defer cancel()
	return memifSockets(rctx, s)
}

func memifSockets(ctx context.Context, s *session) ([]MemifSocket, error) {
	ds, err := drain[*memif.MemifSocketFilenameDetails](s.memif.MemifSocketFilenameDump(ctx, &memif.MemifSocketFilenameDump{}))
	if err != nil {
		return nil, opErr("dump memif sockets", "", nil, err)
	}
	out := make([]MemifSocket, 0, len(ds))
	for _, d := range ds {
		out = append(out, MemifSocket{ID: d.SocketID, Filename: d.SocketFilename})
	}
	return out, nil
}

// abstractPrefix starts a memif socket filename VPP opens as an abstract
// unix socket; ",netns_name=<path>" after the name makes VPP open it in
// that network namespace (a bare name is taken under /var/run/netns/).
const abstractPrefix = "abstract:"

// AbstractSocketFilename is VPP's memif socket filename of the abstract
// socket name, in the network namespace at netns ("" for VPP's own).
func AbstractSocketFilename(name, netns string) string {
	if netns == "" {
		return abstractPrefix + name
	}
	return abstractPrefix + name + ",netns_name=" + netns
}

// IsAbstractSocket says filename names an abstract socket, not a file.
func IsAbstractSocket(filename string) bool { return strings.HasPrefix(filename, abstractPrefix) }

// validMemifSocket accepts a socket file path or an abstract socket
// filename that VPP keeps whole (it cuts the filename after 107 bytes).
func validMemifSocket(filename string) error {
	if !IsAbstractSocket(filename) {
		return validSocketPath(filename)
	}
	if len(filename) >= sunPathMax {
		return fmt.Errorf("socket filename is %d bytes, VPP keeps %d", len(filename), sunPathMax-1)
	}
	return nil
}

func validSocketPath(path string) error {
	if !filepath.IsAbs(path) {
		return errors.New("socket path must be absolute")
	}
	if len(path) >= sunPathMax {
		return fmt.Errorf("socket path is %d bytes, sun_path holds %d", len(path), sunPathMax-1)
	}
	return nil
}

// EnsureMemifSocket returns the id of the memif socket filename, registering
// it first when VPP does not know it yet (VPP picks the id). The directory
// must exist (VPP refuses a missing one with -73).
func (c *Client) EnsureMemifSocket(ctx context.Context, filename string) (uint32, error) {
	const op = "add memif socket"
	obj := fmt.Sprintf("%q", filename)
	if err := validMemifSocket(filename); err != nil {
		return 0, opErr(op, obj, ErrInvalid, err)
	}
	s, rctx, cancel, err := c.begin(ctx, op, obj)
	if err != nil {
		return 0, err
	}
	defer cancel()
	socks, err := memifSockets(rctx, s)
	if err != nil {
		return 0, err
	}
	for _, ms := range socks {
		if ms.Filename == filename {
			return ms.ID, nil
		}
	}
	r, err := s.memif.MemifSocketFilenameAddDelV2(rctx, &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: NoInterface, SocketFilename: filename})
	if err != nil {
		return 0, vppErr(op, obj, err)
	}
	return r.SocketID, nil
}

// AddMemifSocket registers filename under a chosen id. Registering the same
// pair again is not an error; the id taken by another file is ErrConflict
// (retval -116).
func (c *Client) AddMemifSocket(ctx context.Context, id uint32, filename string) error {
	const op = "add memif socket"
	obj := fmt.Sprintf("id %d %q", id, filename)
	if id == 0 || id == NoInterface {
		return opErr(op, obj, ErrInvalid, errors.New("socket id 0 and ~0 are reserved"))
	}
	if err := validMemifSocket(filename); err != nil {
		return opErr(op, obj, ErrInvalid, err)
	}
	s, rctx, cancel, err := c.begin(ctx, op, obj)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := s.memif.MemifSocketFilenameAddDelV2(rctx, &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: id, SocketFilename: filename}); err != nil {
		return vppErr(op, obj, err)
	}
	return nil
}

// DeleteMemifSocket unregisters a memif socket filename. An id that is not
// registered is not an error; one still used by memifs is ErrConflict
// (retval -74).
func (c *Client) DeleteMemifSocket(ctx context.Context, id uint32) error {
	const op = "delete memif socket"
	obj := fmt.Sprintf("id %d", id)
	if id == 0 || id == NoInterface {
		return opErr(op, obj, ErrInvalid, errors.New("socket id 0 (VPP's default) and ~0 cannot be deleted"))
	}
	s, rctx, cancel, err := c.begin(ctx, op, obj)
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.memif.MemifSocketFilenameAddDelV2(rctx, &memif.MemifSocketFilenameAddDelV2{IsAdd: false, SocketID: id})
	// With id 0 and ~0 excluded, VPP answers -73 only for an id it does
	// not know.
	if err == nil || retvalIs(err, api.INVALID_ARGUMENT) {
		return nil
	}
	return vppErr(op, obj, err)
}

func validateMemif(spec MemifSpec) (string, error) {
	tag, err := OwnerTag(spec.Owner)
	if err != nil {
		return "", err
	}
	if spec.Role > MemifSlave {
		return "", fmt.Errorf("unknown memif role %d", spec.Role)
	}
	switch {
	case spec.Mode == MemifPuntInject:
		// Never sent: VPP 25.02 crashes (SIGSEGV) creating such a memif.
		return "", fmt.Errorf("memif mode %s: refused, VPP 25.02 crashes creating it", spec.Mode)
	case spec.Mode > MemifPuntInject:
		return "", fmt.Errorf("unknown memif mode %d", spec.Mode)
	}
	if spec.RingSize != 0 && spec.RingSize&(spec.RingSize-1) != 0 {
		return "", fmt.Errorf("ring size %d is not a power of 2", spec.RingSize)
	}
	if spec.MAC != nil && len(spec.MAC) != 6 {
		return "", errors.New("MAC must be 6 bytes")
	}
	if len(spec.Secret) > 23 {
		return "", errors.New("secret longer than 23 bytes")
	}
	return tag, nil
}

func memifCreateReq(spec MemifSpec) *memif.MemifCreateV2 {
	req := &memif.MemifCreateV2{
		Role:       memif.MemifRole(spec.Role),
		Mode:       memif.MemifMode(spec.Mode),
		RxQueues:   spec.RxQueues,
		TxQueues:   spec.TxQueues,
		ID:         spec.ID,
		SocketID:   spec.SocketID,
		RingSize:   spec.RingSize,
		BufferSize: spec.BufferSize,
		Secret:     spec.Secret,
	}
	if spec.MAC != nil {
		req.HwAddr = ethernet_types.NewMacAddress(spec.MAC)
	}
	return req
}

// CreateMemif creates a memif and tags it with the owner. When a memif with
// the same socket and id exists already, it is returned if it has the same
// role and mode and is owned by the same owner (or untagged, then it is
// adopted); otherwise the result is ErrConflict.
func (c *Client) CreateMemif(ctx context.Context, spec MemifSpec) (Memif, error) {
	const op = "create memif"
	obj := memifObj(spec.SocketID, spec.ID)
	tag, err := validateMemif(spec)
	if err != nil {
		return Memif{}, opErr(op, obj, ErrInvalid, err)
	}
	s, rctx, cancel, err := c.begin(ctx, op, obj)
	if err != nil {
		return Memif{}, err
	}
	defer cancel()
	r, err := s.memif.MemifCreateV2(rctx, memifCreateReq(spec))
	if err != nil {
		if retvalIs(err, api.SUBIF_ALREADY_EXISTS) {
			return adoptMemif(rctx, s, spec, tag, err)
		}
		return Memif{}, vppErr(op, obj, err)
	}
	idx := uint32(r.SwIfIndex)
	if err := setTag(rctx, s, idx, tag); err != nil {
		// Do not leave an untagged interface behind.
		_, _ = s.memif.MemifDelete(rctx, &memif.MemifDelete{SwIfIndex: r.SwIfIndex})
		return Memif{}, opErr(op, obj, nil, err)
	}
	return readMemif(rctx, s, idx, spec)
}

// readMemif builds the result of a create from sw_interface_dump.
func readMemif(ctx context.Context, s *session, idx uint32, spec MemifSpec) (Memif, error) {
	m := Memif{SwIfIndex: idx, SocketID: spec.SocketID, ID: spec.ID, Role: spec.Role, Mode: spec.Mode}
	i, ok, err := lookupIface(ctx, s, idx)
	if err != nil {
		return Memif{}, opErr("create memif", memifObj(spec.SocketID, spec.ID), nil, err)
	}
	if !ok {
		return Memif{}, opErr("create memif", memifObj(spec.SocketID, spec.ID), ErrNotFound,
			fmt.Errorf("sw_if_index %d vanished right after creation", idx))
	}
	m.Name, m.MAC, m.AdminUp, m.LinkUp, m.Tag = i.Name, i.MAC, i.AdminUp, i.LinkUp, i.Tag
	return m, nil
}

// adoptMemif resolves SUBIF_ALREADY_EXISTS: VPP answers it both for an id
// taken on the socket and for a socket used by memifs of the other role.
func adoptMemif(ctx context.Context, s *session, spec MemifSpec, tag string, cause error) (Memif, error) {
	const op = "create memif"
	obj := memifObj(spec.SocketID, spec.ID)
	all, err := memifs(ctx, s)
	if err != nil {
		return Memif{}, err
	}
	for _, m := range all {
		if m.SocketID != spec.SocketID || m.ID != spec.ID {
			continue
		}
		if m.Role != spec.Role || m.Mode != spec.Mode {
			return m, opErr(op, obj, ErrConflict, fmt.Errorf("exists as %s as %s/%s, wanted %s/%s (%w)",
				m.Name, m.Role, m.Mode, spec.Role, spec.Mode, cause))
		}
		switch classify(m.Tag, tag) {
		case ownedByUs:
			return m, nil
		case untagged:
			if err := setTag(ctx, s, m.SwIfIndex, tag); err != nil {
				return Memif{}, opErr(op, obj, nil, err)
			}
			m.Tag = tag
			return m, nil
		default:
			return m, opErr(op, obj, ErrConflict, fmt.Errorf("exists as %s owned by tag %q (%w)", m.Name, m.Tag, cause))
		}
	}
	return Memif{}, opErr(op, obj, ErrConflict, fmt.Errorf("socket %d is used by memifs of the other role (%w)", spec.SocketID, cause))
}

// Memifs lists every memif with its tag.
func (c *Client) Memifs(ctx context.Context) ([]Memif, error) {
	s, rctx, cancel, err := c.begin(ctx, "dump memifs", "")
	if err != nil {
		return nil, err
	}
	defer cancel()
	return memifs(rctx, s)
}

func tagsByIndex(ctx context.Context, s *session) (map[uint32]string, error) {
	ds, err := drain[*interfaces.SwInterfaceDetails](s.ifc.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: interface_types.InterfaceIndex(NoInterface)}))
	if err != nil {
		return nil, err
	}
	tags := make(map[uint32]string, len(ds))
	for _, d := range ds {
		tags[uint32(d.SwIfIndex)] = d.Tag
	}
	return tags, nil
}

// MemifsUntagged lists every memif without its tag, sparing the interface
// dump that reading tags takes, for a caller that dumps the interfaces
// anyway (Interface.Tag has it).
func (c *Client) MemifsUntagged(ctx context.Context) ([]Memif, error) {
	s, rctx, cancel, err := c.begin(ctx, "dump memifs", "")
	if err != nil {
		return nil, err
	}
	defer cancel()
	return memifsTagged(rctx, s, nil)
}

func memifs(ctx context.Context, s *session) ([]Memif, error) {
	tags, err := tagsByIndex(ctx, s)
	if err != nil {
		return nil, opErr("dump memifs", "", nil, err)
	}
	return memifsTagged(ctx, s, tags)
}

func memifsTagged(ctx context.Context, s *session, tags map[uint32]string) ([]Memif, error) {
	ds, err := drain[*memif.MemifDetails](s.memif.MemifDump(ctx, &memif.MemifDump{}))
	if err != nil {
		return nil, opErr("dump memifs", "", nil, err)
	}
	out := make([]Memif, 0, len(ds))
	for _, d := range ds {
		out = append(out, Memif{
			SwIfIndex: uint32(d.SwIfIndex),
			Name:      d.IfName,
			SocketID:  d.SocketID,
			ID:        d.ID,
			Role:      MemifRole(d.Role),
			Mode:      MemifMode(d.Mode),
			MAC:       macFromAPI(d.HwAddr),
			AdminUp:   d.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0,
			LinkUp:    d.Flags&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0,
			Tag:       tags[uint32(d.SwIfIndex)],
		})
	}
	return out, nil
}

// DeleteMemif deletes a memif. An interface that is already gone is not an
// error; an existing interface that is not a memif is ErrConflict.
func (c *Client) DeleteMemif(ctx context.Context, swIfIndex uint32) error {
	return c.deleteTyped(ctx, "delete memif", "memif", swIfIndex, func(ctx context.Context, s *session) error {
		_, err := s.memif.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: interface_types.InterfaceIndex(swIfIndex)})
		return err
	})
}

// deleteTyped runs del, the delete call of one interface type (kind):
// INVALID_SW_IF_INDEX is success when the interface is gone and
// ErrConflict when it is of another type.
func (c *Client) deleteTyped(ctx context.Context, op, kind string, swIfIndex uint32, del func(context.Context, *session) error) error {
	s, rctx, cancel, err := c.begin(ctx, op, ifObj(swIfIndex))
	if err != nil {
		return err
	}
	defer cancel()
	err = del(rctx, s)
	if err == nil {
		return nil
	}
	if retvalIs(err, api.INVALID_SW_IF_INDEX) {
		return goneOrWrongKind(rctx, s, op, swIfIndex, kind, err)
	}
	return vppErr(op, ifObj(swIfIndex), err)
}

// goneOrWrongKind resolves INVALID_SW_IF_INDEX of a typed delete: gone is
// success, another kind of interface is a conflict.
func goneOrWrongKind(ctx context.Context, s *session, op string, swIfIndex uint32, kind string, cause error) error {
	i, ok, err := lookupIface(ctx, s, swIfIndex)
	if err != nil {
		return opErr(op, ifObj(swIfIndex), nil, err)
	}
	if !ok {
		return nil
	}
	return opErr(op, ifObj(swIfIndex), ErrConflict, fmt.Errorf("%s is a %s interface, not a %s (%w)", i.Name, i.DevType, kind, cause))
}
