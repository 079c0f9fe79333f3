package vpp

import (
	"context"
	"errors"
	"fmt"
	"net"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ethernet_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/vhost_user"
)

// VhostUserSpec describes a vhost-user interface to create.
type VhostUserSpec struct {
	Owner      string // tag owner, required
	SocketPath string // absolute, < 108 bytes
	// Server: VPP creates and listens on the socket (VPP is the vhost-user
	// backend's server); otherwise VPP connects to a socket someone else
	// (QEMU, SPDK, a container) listens on.
	Server       bool
	MAC          net.HardwareAddr // nil = VPP picks one
	EnableGSO    bool
	EnablePacked bool
}

// VhostUser is a vhost-user interface as VPP reports it.
type VhostUser struct {
	SwIfIndex  uint32
	Name       string // VirtualEthernet0/0/<n>
	SocketPath string
	Server     bool
	SockErrno  int32 // last socket error (client mode: why it is not connected)
	MAC        net.HardwareAddr
	AdminUp    bool
	LinkUp     bool
	Tag        string
}

// Owner returns the uspace owner recorded in the interface's tag.
func (v VhostUser) Owner() (string, bool) { return TagOwner(v.Tag) }

func vhostObj(path string) string { return fmt.Sprintf("%q", path) }

// CreateVhostUser creates a vhost-user interface tagged with the owner. VPP
// allows one interface per socket path: when it exists already (retval -79)
// it is returned if it has the same mode and owner (or is untagged, then it
// is adopted); otherwise the result is ErrConflict.
func (c *Client) CreateVhostUser(ctx context.Context, spec VhostUserSpec) (VhostUser, error) {
	const op = "create vhost-user"
	obj := vhostObj(spec.SocketPath)
	tag, err := OwnerTag(spec.Owner)
	if err != nil {
		return VhostUser{}, opErr(op, obj, ErrInvalid, err)
	}
	if err := validSocketPath(spec.SocketPath); err != nil {
		return VhostUser{}, opErr(op, obj, ErrInvalid, err)
	}
	if spec.MAC != nil && len(spec.MAC) != 6 {
		return VhostUser{}, opErr(op, obj, ErrInvalid, errors.New("MAC must be 6 bytes"))
	}
	s, rctx, cancel, err := c.begin(ctx, op, obj)
	if err != nil {
		return VhostUser{}, err
	}
	defer cancel()
	req := &vhost_user.CreateVhostUserIfV2{
		IsServer:     spec.Server,
		SockFilename: spec.SocketPath,
		EnableGso:    spec.EnableGSO,
		EnablePacked: spec.EnablePacked,
		Tag:          tag,
	}
	if spec.MAC != nil {
		req.UseCustomMac = true
		req.MacAddress = ethernet_types.NewMacAddress(spec.MAC)
	}
	r, err := s.vhost.CreateVhostUserIfV2(rctx, req)
	created := err == nil
	if err != nil && !retvalIs(err, api.IF_ALREADY_EXISTS) {
		return VhostUser{}, vppErr(op, obj, err)
	}
	cause := err
	v, ok, err := readVhost(rctx, s, uint32(r.SwIfIndex))
	if err != nil {
		return VhostUser{}, opErr(op, obj, nil, err)
	}
	if !ok {
		return VhostUser{}, opErr(op, obj, ErrNotFound, fmt.Errorf("sw_if_index %d reported by VPP does not exist", r.SwIfIndex))
	}
	if created {
		return v, nil
	}
	if v.Server != spec.Server {
		return v, opErr(op, obj, ErrConflict, fmt.Errorf("exists as %s with server=%t (%w)", v.Name, v.Server, cause))
	}
	switch classify(v.Tag, tag) {
	case ownedByUs:
		return v, nil
	case untagged:
		if err := setTag(rctx, s, v.SwIfIndex, tag); err != nil {
			return VhostUser{}, opErr(op, obj, nil, err)
		}
		v.Tag = tag
		return v, nil
	}
	return v, opErr(op, obj, ErrConflict, fmt.Errorf("exists as %s owned by tag %q (%w)", v.Name, v.Tag, cause))
}

func readVhost(ctx context.Context, s *session, idx uint32) (VhostUser, bool, error) {
	ds, err := drain[*vhost_user.SwInterfaceVhostUserDetails](s.vhost.SwInterfaceVhostUserDump(ctx, &vhost_user.SwInterfaceVhostUserDump{SwIfIndex: interface_types.InterfaceIndex(idx)}))
	if err != nil {
		return VhostUser{}, false, err
	}
	for _, d := range ds {
		if uint32(d.SwIfIndex) != idx {
			continue
		}
		v := vhostFromDetails(d)
		i, ok, err := lookupIface(ctx, s, idx)
		if err != nil || !ok {
			return VhostUser{}, ok, err
		}
		v.MAC, v.AdminUp, v.LinkUp, v.Tag = i.MAC, i.AdminUp, i.LinkUp, i.Tag
		return v, true, nil
	}
	return VhostUser{}, false, nil
}

func vhostFromDetails(d *vhost_user.SwInterfaceVhostUserDetails) VhostUser {
	return VhostUser{
		SwIfIndex:  uint32(d.SwIfIndex),
		Name:       d.InterfaceName,
		SocketPath: d.SockFilename,
		Server:     d.IsServer,
		SockErrno:  d.SockErrno,
	}
}

// VhostUsers lists every vhost-user interface with its tag.
func (c *Client) VhostUsers(ctx context.Context) ([]VhostUser, error) {
	return c.vhostUsers(ctx, true)
}

// VhostUsersUntagged lists every vhost-user interface without what only the
// interface dump has (tag, MAC, admin and link state), sparing that dump
// for a caller that dumps the interfaces anyway.
func (c *Client) VhostUsersUntagged(ctx context.Context) ([]VhostUser, error) {
	return c.vhostUsers(ctx, false)
}

func (c *Client) vhostUsers(ctx context.Context, withInterfaces bool) ([]VhostUser, error) {
	const op = "dump vhost-user"
	s, rctx, cancel, err := c.begin(ctx, op, "")
	if err != nil {
		return nil, err
	}
	defer cancel()
	ds, err := drain[*vhost_user.SwInterfaceVhostUserDetails](s.vhost.SwInterfaceVhostUserDump(rctx, &vhost_user.SwInterfaceVhostUserDump{SwIfIndex: interface_types.InterfaceIndex(NoInterface)}))
	if err != nil {
		return nil, opErr(op, "", nil, err)
	}
	out := make([]VhostUser, 0, len(ds))
	for _, d := range ds {
		out = append(out, vhostFromDetails(d))
	}
	if !withInterfaces || len(out) == 0 {
		return out, nil
	}
	all, err := c.interfacesByIndex(rctx, s)
	if err != nil {
		return nil, opErr(op, "", nil, err)
	}
	for i, v := range out {
		if d, ok := all[v.SwIfIndex]; ok {
			out[i].MAC, out[i].AdminUp, out[i].LinkUp, out[i].Tag = d.MAC, d.AdminUp, d.LinkUp, d.Tag
		}
	}
	return out, nil
}

func (c *Client) interfacesByIndex(ctx context.Context, s *session) (map[uint32]Interface, error) {
	ds, err := drain[*interfaces.SwInterfaceDetails](s.ifc.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: interface_types.InterfaceIndex(NoInterface)}))
	if err != nil {
		return nil, err
	}
	out := make(map[uint32]Interface, len(ds))
	for _, d := range ds {
		out[uint32(d.SwIfIndex)] = ifaceFromDetails(d)
	}
	return out, nil
}

// DeleteVhostUser deletes a vhost-user interface (VPP removes the socket of
// a server). An interface that is already gone is not an error; an existing
// interface that is not vhost-user is ErrConflict.
func (c *Client) DeleteVhostUser(ctx context.Context, swIfIndex uint32) error {
	return c.deleteTyped(ctx, "delete vhost-user", "vhost-user", swIfIndex, func(ctx context.Context, s *session) error {
		_, err := s.vhost.DeleteVhostUserIf(ctx, &vhost_user.DeleteVhostUserIf{SwIfIndex: interface_types.InterfaceIndex(swIfIndex)})
		return err
	})
}
