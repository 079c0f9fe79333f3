package vppstate_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/schema"
)

// TestSharedRoutePrefix: two interfaces of a container asking for the same
// prefix (a default route on two networks) each have their path of it;
// the route read back after a reload has both paths and each is adopted by
// its interface; either interface going takes only its own path.
func TestSharedRoutePrefix(t *testing.T) {
	onBoth(t, nil, func(t *testing.T, e *env) {
		s, err := vppstate.Load(e.ctx, e.client, e.root)
		if err != nil {
			t.Fatal(err)
		}
		spec := func(i int) vppstate.Spec {
			sp := memifSpec(e.root, i)
			sp.Addresses = []string{fmt.Sprintf("10.%d.0.2/24", i+1)}
			sp.Routes = []schema.Route{{Dst: "0.0.0.0/0", GW: fmt.Sprintf("10.%d.0.1", i+1)}}
			return sp
		}
		a, b := spec(0), spec(1)
		idx := map[string]uint32{}
		for _, sp := range []vppstate.Spec{a, b} {
			if idx[sp.Owner], err = s.Ensure(e.ctx, sp); err != nil {
				t.Fatal(err)
			}
		}
		// paths are the default route's paths, as (interface, gateway).
		paths := func() []string {
			t.Helper()
			rs, err := e.client.Routes(e.ctx, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range rs {
				if r.Prefix.Bits() != 0 {
					continue
				}
				for _, p := range r.Paths {
					if p.Kind == vpp.PathNormal {
						out = append(out, fmt.Sprintf("%d via %s", p.SwIfIndex, p.Gateway))
					}
				}
			}
			slices.Sort(out)
			return out
		}
		want := func(what string, specs ...vppstate.Spec) {
			t.Helper()
			var w []string
			for _, sp := range specs {
				w = append(w, fmt.Sprintf("%d via %s", idx[sp.Owner], sp.Routes[0].GW))
			}
			slices.Sort(w)
			if got := paths(); !slices.Equal(got, w) {
				t.Fatalf("%s: default route paths %q, want %q", what, got, w)
			}
		}
		want("both interfaces up", a, b)
		// A reload adopts each path for its interface: converging writes
		// nothing, and removing a takes a's path alone.
		if s, err = vppstate.Load(e.ctx, e.client, e.root); err != nil {
			t.Fatal(err)
		}
		for _, sp := range []vppstate.Spec{b, a} {
			if _, err := s.Ensure(e.ctx, sp); err != nil {
				t.Fatal(err)
			}
		}
		want("after a reload", a, b)
		if err := s.Remove(e.ctx, a.Owner); err != nil {
			t.Fatal(err)
		}
		want("after the first interface went", b)
		// Dropping the route from b's spec takes b's path, and with it
		// the route: VPP's own default (drop) is what is left.
		b.Routes = nil
		if _, err := s.Ensure(e.ctx, b); err != nil {
			t.Fatal(err)
		}
		want("after the second interface's route went")
		if s, err = vppstate.Load(e.ctx, e.client, e.root); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(e.ctx, b.Owner); err != nil {
			t.Fatal(err)
		}
	})
}
