package vppstate_test

import (
	"testing"

	"github.com/uspace-io/uspace/agent/vppstate"
)

// TestSplitHorizonAcrossReload: a member's split-horizon group read back
// by a fresh view (an agent's restart) is what a changed group is
// compared with, so the change reaches VPP.
func TestSplitHorizonAcrossReload(t *testing.T) {
	onBoth(t, nil, func(t *testing.T, e *env) {
		const bd = 7
		shgIn := func(idx uint32) uint8 {
			t.Helper()
			d, err := e.client.BridgeDomain(e.ctx, bd)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range d.Members {
				if m.SwIfIndex == idx {
					return m.SHG
				}
			}
			t.Fatalf("interface %d not in bridge domain %d: %+v", idx, bd, d.Members)
			return 0
		}
		spec := memifSpec(e.root, 0)
		spec.Bridge = bd
		for i, shg := range []uint8{1, 0, 2, 2} {
			// A fresh view each time, as a restarted agent has.
			s, err := vppstate.Load(e.ctx, e.client, e.root)
			if err != nil {
				t.Fatal(err)
			}
			spec.SplitHorizon = shg
			idx, err := s.Ensure(e.ctx, spec)
			if err != nil {
				t.Fatalf("step %d: ensure with split-horizon group %d: %v", i, shg, err)
			}
			if got := shgIn(idx); got != shg {
				t.Fatalf("step %d: split-horizon group %d in VPP, want %d", i, got, shg)
			}
		}
	})
}
