package vpp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ethernet_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
)

// NoInterface is sw_if_index ~0: "any" in dumps, "none" in route paths.
const NoInterface = ^uint32(0)

// Interface is a VPP software interface as sw_interface_dump reports it.
type Interface struct {
	SwIfIndex uint32
	Name      string
	DevType   string // "memif", "vhost-user", "local", ...
	Tag       string
	AdminUp   bool
	LinkUp    bool
	MTU       uint32 // L3 MTU
	LinkMTU   uint16
	MAC       net.HardwareAddr // nil when the interface has none
	// Addresses is filled by Interface (one interface), not by Interfaces.
	Addresses []netip.Prefix
}

// Owner returns the uspace owner recorded in the interface's tag.
func (i Interface) Owner() (string, bool) { return TagOwner(i.Tag) }

type recvClient[T any] interface {
	Recv() (T, error)
	Close() error
}

// drain reads a generated dump client to its end.
func drain[T any, C recvClient[T]](c C, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	var out []T
	for {
		d, err := c.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		out = append(out, d)
	}
}

func macFromAPI(m ethernet_types.MacAddress) net.HardwareAddr {
	if m == (ethernet_types.MacAddress{}) {
		return nil
	}
	return append(net.HardwareAddr(nil), m[:]...)
}

func ifaceFromDetails(d *interfaces.SwInterfaceDetails) Interface {
	i := Interface{
		SwIfIndex: uint32(d.SwIfIndex),
		Name:      d.InterfaceName,
		DevType:   d.InterfaceDevType,
		Tag:       d.Tag,
		AdminUp:   d.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0,
		LinkUp:    d.Flags&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0,
		LinkMTU:   d.LinkMtu,
		MAC:       macFromAPI(d.L2Address),
	}
	if len(d.Mtu) > 0 {
		i.MTU = d.Mtu[0]
	}
	return i
}

func ifObj(swIfIndex uint32) string { return fmt.Sprintf("sw_if_index %d", swIfIndex) }

// Interfaces lists every interface (without addresses).
func (c *Client) Interfaces(ctx context.Context) ([]Interface, error) {
	s, rctx, cancel, err := c.begin(ctx, "dump interfaces", "")
	if err != nil {
		return nil, err
	}
	defer cancel()
	ds, err := drain[*interfaces.SwInterfaceDetails](s.ifc.SwInterfaceDump(rctx, &interfaces.SwInterfaceDump{SwIfIndex: interface_types.InterfaceIndex(NoInterface)}))
	if err != nil {
		return nil, opErr("dump interfaces", "", nil, err)
	}
	out := make([]Interface, 0, len(ds))
	for _, d := range ds {
		out = append(out, ifaceFromDetails(d))
	}
	return out, nil
}

// lookupIface reads one interface; ok is false when it does not exist.
func lookupIface(ctx context.Context, s *session, swIfIndex uint32) (Interface, bool, error) {
	ds, err := drain[*interfaces.SwInterfaceDetails](s.ifc.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: interface_types.InterfaceIndex(swIfIndex)}))
	if err != nil {
		return Interface{}, false, err
	}
	for _, d := range ds {
		if uint32(d.SwIfIndex) == swIfIndex {
			return ifaceFromDetails(d), true, nil
		}
	}
	return Interface{}, false, nil
}

func addresses(ctx context.Context, s *session, swIfIndex uint32) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v6 := range []bool{false, true} {
		ds, err := drain[*ip.IPAddressDetails](s.ip.IPAddressDump(ctx, &ip.IPAddressDump{SwIfIndex: interface_types.InterfaceIndex(swIfIndex), IsIPv6: v6}))
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if p, ok := prefixFromAPI(ip_types.Prefix(d.Prefix)); ok {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// Interface reads one interface with its IP addresses; a missing interface
// is an error matching ErrNotFound.
func (c *Client) Interface(ctx context.Context, swIfIndex uint32) (Interface, error) {
	return read(c, ctx, 0, "get interface", ifObj(swIfIndex), func(ctx context.Context, s *session) (Interface, error) {
		i, ok, err := lookupIface(ctx, s, swIfIndex)
		if err = found(ok, err); err != nil {
			return i, err
		}
		i.Addresses, err = addresses(ctx, s, swIfIndex)
		return i, err
	})
}

// LookupInterface reads one interface (without addresses); ok is false
// when VPP has none at that index.
func (c *Client) LookupInterface(ctx context.Context, swIfIndex uint32) (_ Interface, ok bool, _ error) {
	const op = "get interface"
	s, rctx, cancel, err := c.begin(ctx, op, ifObj(swIfIndex))
	if err != nil {
		return Interface{}, false, err
	}
	defer cancel()
	i, ok, err := lookupIface(rctx, s, swIfIndex)
	if err != nil {
		return Interface{}, false, opErr(op, ifObj(swIfIndex), nil, err)
	}
	return i, ok, nil
}

// InterfaceAddresses lists the IPv4 and IPv6 addresses of an interface.
func (c *Client) InterfaceAddresses(ctx context.Context, swIfIndex uint32) ([]netip.Prefix, error) {
	const op = "dump addresses"
	s, rctx, cancel, err := c.begin(ctx, op, ifObj(swIfIndex))
	if err != nil {
		return nil, err
	}
	defer cancel()
	out, err := addresses(rctx, s, swIfIndex)
	if err != nil {
		return nil, opErr(op, ifObj(swIfIndex), nil, err)
	}
	return out, nil
}

// kindOf maps retvals to error kinds.
func kindOf(err error) error {
	rv, ok := Retval(err)
	if !ok {
		return nil
	}
	switch api.VPPApiError(rv) {
	case api.INVALID_SW_IF_INDEX, api.NO_SUCH_ENTRY, api.NO_SUCH_FIB, api.NO_MATCHING_INTERFACE:
		return ErrNotFound
	case api.IF_ALREADY_EXISTS, api.SUBIF_ALREADY_EXISTS, api.VALUE_EXIST, api.ENTRY_ALREADY_EXISTS,
		api.BD_ALREADY_EXISTS, api.BD_IN_USE, api.ADDRESS_IN_USE, api.UNEXPECTED_INTF_STATE:
		return ErrConflict
	case api.INVALID_ARGUMENT, api.INVALID_VALUE:
		return ErrInvalid
	}
	return nil
}

// vppErr wraps an error of a VPP call.
func vppErr(op, object string, err error) error {
	return opErr(op, object, kindOf(err), err)
}

// SetAdminUp sets an interface administratively up or down.
func (c *Client) SetAdminUp(ctx context.Context, swIfIndex uint32, up bool) error {
	op := "set admin down"
	var flags interface_types.IfStatusFlags
	if up {
		op = "set admin up"
		flags = interface_types.IF_STATUS_API_FLAG_ADMIN_UP
	}
	s, rctx, cancel, err := c.begin(ctx, op, ifObj(swIfIndex))
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := s.ifc.SwInterfaceSetFlags(rctx, &interfaces.SwInterfaceSetFlags{SwIfIndex: interface_types.InterfaceIndex(swIfIndex), Flags: flags}); err != nil {
		return vppErr(op, ifObj(swIfIndex), err)
	}
	return nil
}

// SetMTU sets the L3 MTU of an interface (the per-protocol MTUs follow it).
func (c *Client) SetMTU(ctx context.Context, swIfIndex, mtu uint32) error {
	const op = "set mtu"
	obj := fmt.Sprintf("%s mtu %d", ifObj(swIfIndex), mtu)
	if mtu == 0 {
		return opErr(op, obj, ErrInvalid, nil)
	}
	s, rctx, cancel, err := c.begin(ctx, op, obj)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := s.ifc.SwInterfaceSetMtu(rctx, &interfaces.SwInterfaceSetMtu{SwIfIndex: interface_types.InterfaceIndex(swIfIndex), Mtu: []uint32{mtu, 0, 0, 0}}); err != nil {
		return vppErr(op, obj, err)
	}
	return nil
}

// SetMAC sets the MAC address of an (ethernet) interface.
func (c *Client) SetMAC(ctx context.Context, swIfIndex uint32, mac net.HardwareAddr) error {
	const op = "set mac"
	obj := fmt.Sprintf("%s mac %s", ifObj(swIfIndex), mac)
	if len(mac) != 6 {
		return opErr(op, obj, ErrInvalid, errors.New("MAC must be 6 bytes"))
	}
	s, rctx, cancel, err := c.begin(ctx, op, obj)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := s.ifc.SwInterfaceSetMacAddress(rctx, &interfaces.SwInterfaceSetMacAddress{SwIfIndex: interface_types.InterfaceIndex(swIfIndex), MacAddress: ethernet_types.NewMacAddress(mac)}); err != nil {
		return vppErr(op, obj, err)
	}
	return nil
}

// AddAddress adds an IP address (with its prefix length) to an interface.
// Adding an address the interface already has is not an error; an address
// that overlaps another interface's is (ErrConflict, retval -105).
func (c *Client) AddAddress(ctx context.Context, swIfIndex uint32, addr netip.Prefix) error {
	return c.addDelAddress(ctx, swIfIndex, addr, true)
}

// DeleteAddress removes an IP address from an interface. An address (or
// interface) that is already gone is not an error.
func (c *Client) DeleteAddress(ctx context.Context, swIfIndex uint32, addr netip.Prefix) error {
	return c.addDelAddress(ctx, swIfIndex, addr, false)
}

func (c *Client) addDelAddress(ctx context.Context, swIfIndex uint32, addr netip.Prefix, isAdd bool) error {
	op := "delete address"
	if isAdd {
		op = "add address"
	}
	obj := fmt.Sprintf("%s %s", ifObj(swIfIndex), addr)
	if !addr.IsValid() {
		return opErr(op, obj, ErrInvalid, nil)
	}
	s, rctx, cancel, err := c.begin(ctx, op, obj)
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.ifc.SwInterfaceAddDelAddress(rctx, &interfaces.SwInterfaceAddDelAddress{
		SwIfIndex: interface_types.InterfaceIndex(swIfIndex), IsAdd: isAdd, Prefix: ip_types.AddressWithPrefix(prefixToAPI(addr)),
	})
	switch {
	case err == nil:
		return nil
	case !isAdd && (retvalIs(err, api.ADDRESS_NOT_FOUND_FOR_INTERFACE) || retvalIs(err, api.INVALID_SW_IF_INDEX)):
		return nil
	case isAdd && (retvalIs(err, api.ADDRESS_IN_USE) || retvalIs(err, api.DUPLICATE_IF_ADDRESS)):
		// Already there is success; on another interface it is not.
		if have, derr := addresses(rctx, s, swIfIndex); derr == nil && slices.Contains(have, addr) {
			return nil
		}
	}
	return vppErr(op, obj, err)
}

// SetOwner tags an interface as owned by owner.
func (c *Client) SetOwner(ctx context.Context, swIfIndex uint32, owner string) error {
	const op = "tag interface"
	tag, err := OwnerTag(owner)
	if err != nil {
		return opErr(op, ifObj(swIfIndex), ErrInvalid, err)
	}
	s, rctx, cancel, err := c.begin(ctx, op, ifObj(swIfIndex))
	if err != nil {
		return err
	}
	defer cancel()
	return setTag(rctx, s, swIfIndex, tag)
}

func setTag(ctx context.Context, s *session, swIfIndex uint32, tag string) error {
	if _, err := s.ifc.SwInterfaceTagAddDel(ctx, &interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: interface_types.InterfaceIndex(swIfIndex), Tag: tag}); err != nil {
		return vppErr("tag interface", fmt.Sprintf("%s tag %q", ifObj(swIfIndex), tag), err)
	}
	return nil
}

// ClearOwner removes an interface's tag. A missing interface is not an
// error.
func (c *Client) ClearOwner(ctx context.Context, swIfIndex uint32) error {
	const op = "untag interface"
	s, rctx, cancel, err := c.begin(ctx, op, ifObj(swIfIndex))
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.ifc.SwInterfaceTagAddDel(rctx, &interfaces.SwInterfaceTagAddDel{IsAdd: false, SwIfIndex: interface_types.InterfaceIndex(swIfIndex)})
	if err == nil || retvalIs(err, api.INVALID_SW_IF_INDEX) {
		return nil
	}
	return vppErr(op, ifObj(swIfIndex), err)
}

func prefixFromAPI(p ip_types.Prefix) (netip.Prefix, bool) {
	var a netip.Addr
	switch p.Address.Af {
	case ip_types.ADDRESS_IP4:
		a = netip.AddrFrom4(p.Address.Un.GetIP4())
	case ip_types.ADDRESS_IP6:
		a = netip.AddrFrom16(p.Address.Un.GetIP6())
	default:
		return netip.Prefix{}, false
	}
	pfx := netip.PrefixFrom(a, int(p.Len))
	return pfx, pfx.IsValid()
}

func addrToAPI(a netip.Addr) ip_types.Address {
	if a.Is4() {
		return ip_types.Address{Af: ip_types.ADDRESS_IP4, Un: ip_types.AddressUnionIP4(a.As4())}
	}
	return ip_types.Address{Af: ip_types.ADDRESS_IP6, Un: ip_types.AddressUnionIP6(a.As16())}
}

func prefixToAPI(p netip.Prefix) ip_types.Prefix {
	return ip_types.Prefix{Address: addrToAPI(p.Addr().Unmap()), Len: uint8(p.Bits())}
}
