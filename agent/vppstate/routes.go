package vppstate

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/schema"
)

// convergeRoutes makes the routes through idx those of the spec. What was
// applied before this view (an agent restart, a reload) is read back from
// VPP first, so an adopted route costs no write and a dropped one is
// deleted whenever it was added.
func (s *State) convergeRoutes(ctx context.Context, idx uint32, routes []schema.Route) error {
	if !s.routesRead && !subset(routes, s.routes[idx]) {
		if err := s.adoptRoutes(ctx); err != nil {
			return err
		}
	}
	kept := s.routes[idx][:0:0]
	for _, r := range s.routes[idx] {
		if slices.Contains(routes, r) {
			kept = append(kept, r)
			continue
		}
		if err := s.deleteRoute(ctx, idx, r); err != nil {
			return err
		}
	}
	s.routes[idx] = kept
	for _, r := range routes {
		if slices.Contains(s.routes[idx], r) {
			continue
		}
		vr, err := vppRoute(idx, r)
		if err != nil {
			return err
		}
		if err := s.vpp.AddRoute(ctx, vr); err != nil {
			return err
		}
		s.routes[idx] = append(s.routes[idx], r)
	}
	return nil
}

// vppRoute is r as a route through idx: one path, which AddRoute and
// DeleteRoute add or remove alone, so each interface's route to a prefix
// lives and dies with that interface whoever else routes the prefix.
func vppRoute(idx uint32, r schema.Route) (vpp.Route, error) {
	dst, err := netip.ParsePrefix(r.Dst)
	if err != nil {
		return vpp.Route{}, fmt.Errorf("route %q: %w", r.Dst, err)
	}
	path := vpp.RoutePath{SwIfIndex: idx}
	if r.GW != "" {
		if path.Gateway, err = netip.ParseAddr(r.GW); err != nil {
			return vpp.Route{}, fmt.Errorf("route %s via %q: %w", r.Dst, r.GW, err)
		}
	}
	return vpp.Route{Prefix: dst, Paths: []vpp.RoutePath{path}}, nil
}

// removeRoutes deletes every route uspace added through idx, ahead of the
// interface itself.
func (s *State) removeRoutes(ctx context.Context, idx uint32) error {
	if err := s.adoptRoutes(ctx); err != nil {
		return err
	}
	for len(s.routes[idx]) > 0 {
		if err := s.deleteRoute(ctx, idx, s.routes[idx][0]); err != nil {
			return err
		}
		s.routes[idx] = s.routes[idx][1:]
	}
	delete(s.routes, idx)
	return nil
}

func (s *State) deleteRoute(ctx context.Context, idx uint32, r schema.Route) error {
	vr, err := vppRoute(idx, r)
	if err != nil {
		return err
	}
	return s.vpp.DeleteRoute(ctx, vr)
}

// adoptRoutes reads back, once per view, the routes through uspace's
// interfaces: each normal path of a table-0 route that leaves through an
// interface uspace tagged is that interface's route (a prefix several
// interfaces route has a path of each), except the attached routes VPP
// made for that interface's own addresses. Nothing but the agent adds
// routes through an interface it created, so these are the ones it added
// before this view, or, on an index VPP reused, stale ones left by an
// interface before it.
func (s *State) adoptRoutes(ctx context.Context) error {
	if s.routesRead {
		return nil
	}
	owned := map[uint32]bool{}
	for _, idx := range s.byOwner {
		owned[idx] = true
	}
	for _, v6 := range []bool{false, true} {
		rs, err := s.vpp.Routes(ctx, 0, v6)
		if err != nil {
			return err
		}
		for _, r := range rs {
			for _, p := range r.Paths {
				if p.Kind != vpp.PathNormal || !owned[p.SwIfIndex] {
					continue
				}
				if err := s.adoptRoute(ctx, p.SwIfIndex, r.Prefix, p.Gateway); err != nil {
					return err
				}
			}
		}
	}
	s.routesRead = true
	return nil
}

// adoptRoute records the route to prefix via gw through idx, unless it is
// the attached route of one of idx's addresses.
func (s *State) adoptRoute(ctx context.Context, idx uint32, prefix netip.Prefix, gw netip.Addr) error {
	if !gw.IsValid() {
		addrs, err := s.addresses(ctx, idx)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(addrs, func(a netip.Prefix) bool { return a.Masked() == prefix.Masked() }) {
			return nil
		}
	}
	sr := schema.Route{Dst: prefix.String()}
	if gw.IsValid() {
		sr.GW = gw.String()
	}
	if !slices.Contains(s.routes[idx], sr) {
		s.routes[idx] = append(s.routes[idx], sr)
	}
	return nil
}

// addresses are idx's addresses, read once per view.
func (s *State) addresses(ctx context.Context, idx uint32) ([]netip.Prefix, error) {
	if have, ok := s.addrs[idx]; ok {
		return have, nil
	}
	have, err := s.vpp.InterfaceAddresses(ctx, idx)
	if err != nil {
		return nil, err
	}
	s.addrs[idx] = have
	return have, nil
}

func subset(a, b []schema.Route) bool {
	for _, r := range a {
		if !slices.Contains(b, r) {
			return false
		}
	}
	return true
}
