package vpp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"go.fd.io/govpp/binapi/fib_types"
	"go.fd.io/govpp/binapi/ip"
)

// PathKind is the kind of a route path.
type PathKind uint8

const (
	PathNormal PathKind = iota // forward via a next hop and/or an interface
	PathLocal                  // for this host
	PathDrop                   // discard
)

func (k PathKind) String() string {
	switch k {
	case PathLocal:
		return "local"
	case PathDrop:
		return "drop"
	}
	return "normal"
}

// RoutePath is one path of a route.
type RoutePath struct {
	Gateway netip.Addr // zero: attached (no next hop)
	// SwIfIndex is the outgoing interface; NoInterface (or 0, local0, which
	// never carries routes) resolves through Gateway.
	SwIfIndex  uint32
	Weight     uint8 // 0 = 1
	Preference uint8
	Kind       PathKind
}

// Route is an IP route in a FIB table.
type Route struct {
	Table  uint32 // 0 = default table
	Prefix netip.Prefix
	Paths  []RoutePath
}

func routeObj(table uint32, p netip.Prefix) string {
	return fmt.Sprintf("%s table %d", p, table)
}

func pathToAPI(p RoutePath, v6 bool) (fib_types.FibPath, error) {
	fp := fib_types.FibPath{SwIfIndex: p.SwIfIndex, Weight: p.Weight, Preference: p.Preference, Proto: fib_types.FIB_API_PATH_NH_PROTO_IP4}
	if v6 {
		fp.Proto = fib_types.FIB_API_PATH_NH_PROTO_IP6
	}
	if fp.SwIfIndex == 0 {
		fp.SwIfIndex = NoInterface
	}
	if fp.Weight == 0 {
		fp.Weight = 1
	}
	switch p.Kind {
	case PathLocal:
		fp.Type = fib_types.FIB_API_PATH_TYPE_LOCAL
	case PathDrop:
		fp.Type = fib_types.FIB_API_PATH_TYPE_DROP
	default:
		fp.Type = fib_types.FIB_API_PATH_TYPE_NORMAL
	}
	if p.Gateway.IsValid() {
		gw := p.Gateway.Unmap()
		if gw.Is6() != v6 {
			return fp, fmt.Errorf("gateway %s is not of the prefix's family", p.Gateway)
		}
		fp.Nh.Address = addrToAPI(gw).Un
	} else if p.Kind == PathNormal && fp.SwIfIndex == NoInterface {
		return fp, errors.New("a path needs a gateway or an interface")
	}
	return fp, nil
}

func pathFromAPI(fp fib_types.FibPath) RoutePath {
	p := RoutePath{SwIfIndex: fp.SwIfIndex, Weight: fp.Weight, Preference: fp.Preference}
	switch fp.Type {
	case fib_types.FIB_API_PATH_TYPE_LOCAL:
		p.Kind = PathLocal
	case fib_types.FIB_API_PATH_TYPE_DROP:
		p.Kind = PathDrop
	}
	var gw netip.Addr
	if fp.Proto == fib_types.FIB_API_PATH_NH_PROTO_IP6 {
		gw = netip.AddrFrom16(fp.Nh.Address.GetIP6())
	} else {
		gw = netip.AddrFrom4(fp.Nh.Address.GetIP4())
	}
	if !gw.IsUnspecified() {
		p.Gateway = gw
	}
	return p
}

// AddRoute adds r's paths to the route of its prefix, keeping the paths
// others added (ip_route_add_del with is_multipath): two interfaces asking
// for one prefix each have a path of it. VPP 25.02 ignores a path the
// route has already, so repeating it is harmless.
func (c *Client) AddRoute(ctx context.Context, r Route) error {
	return c.routePaths(ctx, "add route", true, r)
}

// DeleteRoute removes r's paths from the route of its prefix; VPP removes
// the route with its last path. A missing path or route is not an error
// (VPP 25.02 answers 0).
func (c *Client) DeleteRoute(ctx context.Context, r Route) error {
	return c.routePaths(ctx, "delete route", false, r)
}

func (c *Client) routePaths(ctx context.Context, op string, add bool, r Route) error {
	obj := routeObj(r.Table, r.Prefix)
	if !r.Prefix.IsValid() || len(r.Paths) == 0 || len(r.Paths) > 255 {
		return opErr(op, obj, ErrInvalid, errors.New("need a valid prefix and 1..255 paths"))
	}
	pfx := r.Prefix.Masked()
	v6 := pfx.Addr().Is6()
	paths := make([]fib_types.FibPath, 0, len(r.Paths))
	for _, p := range r.Paths {
		fp, err := pathToAPI(p, v6)
		if err != nil {
			return opErr(op, obj, ErrInvalid, err)
		}
		paths = append(paths, fp)
	}
	s, rctx, cancel, err := c.begin(ctx, op, obj)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := s.ip.IPRouteAddDel(rctx, &ip.IPRouteAddDel{IsAdd: add, IsMultipath: true, Route: ip.IPRoute{
		TableID: r.Table, Prefix: prefixToAPI(pfx), NPaths: uint8(len(paths)), Paths: paths,
	}}); err != nil {
		return vppErr(op, obj, err)
	}
	return nil
}

// Routes lists the IPv4 or IPv6 routes of a table, including the ones VPP
// installs itself (drop, local and attached routes).
func (c *Client) Routes(ctx context.Context, table uint32, ipv6 bool) ([]Route, error) {
	const op = "dump routes"
	obj := fmt.Sprintf("table %d ipv6=%t", table, ipv6)
	s, rctx, cancel, err := c.begin(ctx, op, obj)
	if err != nil {
		return nil, err
	}
	defer cancel()
	ds, err := drain[*ip.IPRouteDetails](s.ip.IPRouteDump(rctx, &ip.IPRouteDump{Table: ip.IPTable{TableID: table, IsIP6: ipv6}}))
	if err != nil {
		return nil, opErr(op, obj, nil, err)
	}
	out := make([]Route, 0, len(ds))
	for _, d := range ds {
		pfx, ok := prefixFromAPI(d.Route.Prefix)
		if !ok {
			continue
		}
		r := Route{Table: d.Route.TableID, Prefix: pfx}
		for _, fp := range d.Route.Paths {
			r.Paths = append(r.Paths, pathFromAPI(fp))
		}
		out = append(out, r)
	}
	return out, nil
}
