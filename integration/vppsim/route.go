package vppsim

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"

	"go.fd.io/govpp/binapi/fib_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
)

func prefixFromAPI(p ip_types.Prefix) (netip.Prefix, bool) {
	a := addrFromAPI(p.Address)
	if !a.IsValid() {
		return netip.Prefix{}, false
	}
	pfx := netip.PrefixFrom(a, int(p.Len))
	return pfx, pfx.IsValid()
}

func addrFromAPI(a ip_types.Address) netip.Addr {
	switch a.Af {
	case ip_types.ADDRESS_IP4:
		return netip.AddrFrom4(a.Un.GetIP4())
	case ip_types.ADDRESS_IP6:
		return netip.AddrFrom16(a.Un.GetIP6())
	}
	return netip.Addr{}
}

func prefixToAPI(p netip.Prefix) ip_types.Prefix {
	return ip_types.Prefix{Address: addrToAPI(p.Addr()), Len: uint8(p.Bits())}
}

func addrToAPI(a netip.Addr) ip_types.Address {
	if a.Is4() {
		return ip_types.Address{Af: ip_types.ADDRESS_IP4, Un: ip_types.AddressUnionIP4(a.As4())}
	}
	return ip_types.Address{Af: ip_types.ADDRESS_IP6, Un: ip_types.AddressUnionIP6(a.As16())}
}

func hIPAddressDump(s *Sim, _ *client, req *ip.IPAddressDump) []*ip.IPAddressDetails {
	i := s.st.ifaces[uint32(req.SwIfIndex)]
	if i == nil {
		return nil
	}
	var out []*ip.IPAddressDetails
	for _, a := range i.addrs {
		if a.Addr().Is6() != req.IsIPv6 {
			continue
		}
		out = append(out, &ip.IPAddressDetails{
			SwIfIndex: req.SwIfIndex,
			Prefix:    ip_types.AddressWithPrefix(prefixToAPI(a)),
		})
	}
	return out
}

// addInterfaceRoutes adds the attached (connected) and local routes an
// interface address creates in table 0.
func (w *world) addInterfaceRoutes(swIfIndex uint32, a netip.Prefix) {
	host := netip.PrefixFrom(a.Addr(), a.Addr().BitLen())
	if a.Bits() < a.Addr().BitLen() {
		k := routeKey{0, a.Masked()}
		w.routes[k] = &route{key: k, source: srcInterface, shown: a, paths: []fib_types.FibPath{{
			SwIfIndex: swIfIndex, Weight: 1, Type: fib_types.FIB_API_PATH_TYPE_NORMAL, Proto: protoOf(a),
		}}}
	}
	k := routeKey{0, host}
	w.routes[k] = &route{key: k, source: srcInterface, paths: []fib_types.FibPath{{
		SwIfIndex: swIfIndex, Weight: 1, Type: fib_types.FIB_API_PATH_TYPE_LOCAL, Proto: protoOf(a),
	}}}
	// VPP 25.02 also drops the subnet's network and broadcast addresses
	// with /32 entries of their own.
	for _, d := range ipv4Edges(a) {
		k := routeKey{0, d}
		w.routes[k] = &route{key: k, source: srcInterface, paths: []fib_types.FibPath{{
			SwIfIndex: invalidIndex, Weight: 1, Type: fib_types.FIB_API_PATH_TYPE_DROP, Proto: protoOf(a),
		}}}
	}
}

// ipv4Edges are the network and broadcast /32s of an IPv4 subnet that has
// both (shorter than /31).
func ipv4Edges(a netip.Prefix) []netip.Prefix {
	if !a.Addr().Is4() || a.Bits() >= 31 {
		return nil
	}
	n := a.Masked().Addr().As4()
	b := n
	for i := a.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4(n), 32), netip.PrefixFrom(netip.AddrFrom4(b), 32)}
}

func (w *world) delInterfaceRoutes(swIfIndex uint32, a netip.Prefix) {
	for _, k := range []routeKey{{0, a.Masked()}, {0, netip.PrefixFrom(a.Addr(), a.Addr().BitLen())}} {
		if r := w.routes[k]; r != nil && r.source == srcInterface && len(r.paths) > 0 && r.paths[0].SwIfIndex == swIfIndex {
			delete(w.routes, k)
		}
	}
	for _, d := range ipv4Edges(a) {
		if r := w.routes[routeKey{0, d}]; r != nil && r.source == srcInterface {
			delete(w.routes, routeKey{0, d})
		}
	}
}

func normPath(p fib_types.FibPath) fib_types.FibPath {
	if p.Weight == 0 {
		p.Weight = 1
	}
	return p
}

// hIPRouteAddDel follows ip_route_add_del_t_handler for table 0 (the only
// table that exists; others are NO_SUCH_FIB). Without is_multipath an add
// replaces the route's paths and a delete removes the route, whatever
// paths it names; with is_multipath an add adds the paths it lacks and a
// delete removes the paths named, the route with its last one. Deleting
// what is not there is not an error (as VPP 25.02 answers).
func hIPRouteAddDel(s *Sim, _ *client, req *ip.IPRouteAddDel) *ip.IPRouteAddDelReply {
	w := s.st
	r := req.Route
	if r.TableID != 0 {
		return &ip.IPRouteAddDelReply{Retval: rvNoSuchFib}
	}
	pfx, ok := prefixFromAPI(r.Prefix)
	if !ok {
		return &ip.IPRouteAddDelReply{Retval: rvInvalidArgument}
	}
	pfx = pfx.Masked()
	paths := make([]fib_types.FibPath, 0, len(r.Paths))
	for _, p := range r.Paths {
		if p.SwIfIndex != invalidIndex {
			if w.ifaces[p.SwIfIndex] == nil {
				return &ip.IPRouteAddDelReply{Retval: rvNoMatchingInterface} // VPP 25.02: -54, not -2
			}
		}
		paths = append(paths, normPath(p))
	}
	k := routeKey{0, pfx}
	cur := w.routes[k]
	var under *route
	if cur != nil && cur.source != srcAPI {
		if !req.IsAdd {
			return &ip.IPRouteAddDelReply{}
		}
		// The API source takes precedence over VPP's own entry.
		under, cur = cur, nil
	}
	if req.IsAdd {
		if len(paths) == 0 {
			return &ip.IPRouteAddDelReply{Retval: rvInvalidArgument}
		}
		if cur == nil || !req.IsMultipath {
			if cur != nil {
				under = cur.under
			}
			cur = &route{key: k, source: srcAPI, under: under}
			w.routes[k] = cur
		}
		for _, p := range paths {
			if !containsPath(cur.paths, p) {
				cur.paths = append(cur.paths, p)
			}
		}
		sortPaths(cur.paths)
		return &ip.IPRouteAddDelReply{StatsIndex: uint32(len(w.routes))}
	}
	if cur == nil {
		return &ip.IPRouteAddDelReply{}
	}
	kept := cur.paths[:0]
	for _, p := range cur.paths {
		if len(paths) > 0 && req.IsMultipath && !containsPath(paths, p) {
			kept = append(kept, p)
		}
	}
	cur.paths = kept
	if len(cur.paths) == 0 {
		w.dropAPIRoute(cur)
	}
	return &ip.IPRouteAddDelReply{}
}

// dropAPIRoute removes an API route, showing again what it hid.
func (w *world) dropAPIRoute(r *route) {
	if r.under != nil {
		w.routes[r.key] = r.under
		return
	}
	delete(w.routes, r.key)
}

// sortPaths orders paths as VPP's path lists keep them (fib_path_cmp):
// by type, then next hop, then interface.
func sortPaths(ps []fib_types.FibPath) {
	slices.SortStableFunc(ps, func(a, b fib_types.FibPath) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), bytes.Compare(a.Nh.Address.XXX_UnionData[:], b.Nh.Address.XXX_UnionData[:]),
			cmp.Compare(a.SwIfIndex, b.SwIfIndex))
	})
}

func containsPath(ps []fib_types.FibPath, p fib_types.FibPath) bool {
	for _, q := range ps {
		if q.SwIfIndex == p.SwIfIndex && q.Type == p.Type && q.Proto == p.Proto && q.Nh.Address == p.Nh.Address {
			return true
		}
	}
	return false
}

func hIPRouteDump(s *Sim, _ *client, req *ip.IPRouteDump) []*ip.IPRouteDetails {
	if req.Table.TableID != 0 {
		return nil
	}
	var out []*ip.IPRouteDetails
	for _, r := range s.st.sortedRoutes() {
		if r.key.prefix.Addr().Is6() != req.Table.IsIP6 {
			continue
		}
		shown := r.key.prefix
		if r.shown.IsValid() {
			shown = r.shown
		}
		out = append(out, &ip.IPRouteDetails{Route: ip.IPRoute{
			TableID: 0,
			Prefix:  prefixToAPI(shown),
			NPaths:  uint8(len(r.paths)),
			Paths:   append([]fib_types.FibPath(nil), r.paths...),
		}})
	}
	return out
}
