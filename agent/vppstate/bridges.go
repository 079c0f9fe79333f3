package vppstate

import (
	"context"
	"errors"
	"slices"

	"github.com/uspace-io/uspace/agent/vpp"
)

// Bridge domains: an interface's membership (with its split-horizon
// group), the domains uspace creates for its interfaces and removes when
// their last member goes.

// membership is an interface's place in a bridge domain: looked up per
// reconcile, where a domain's member list (thousands on one network)
// would be scanned.
type membership struct {
	bd  uint32
	shg uint8 // split-horizon group
}

func (s *State) bridgeOf(idx uint32) (uint32, bool) {
	m, ok := s.bdOf[idx]
	return m.bd, ok
}

// joined records that idx was put into bridge domain bd.
func (s *State) joined(idx, id uint32, shg uint8, bd vpp.BridgeDomain) {
	bd.Members = append(bd.Members, vpp.BridgeMember{SwIfIndex: idx, SHG: shg})
	s.bds[id] = bd
	s.bdOf[idx] = membership{bd: id, shg: shg}
}

func (s *State) convergeBridge(ctx context.Context, idx, want uint32, shg uint8) error {
	cur, in := s.bdOf[idx]
	if in && cur.bd == want && cur.shg == shg {
		return nil
	}
	if in {
		if err := s.detach(ctx, idx, cur.bd); err != nil {
			return err
		}
	}
	if want == 0 {
		return nil
	}
	bd, err := s.bridge(ctx, want)
	if err != nil {
		return err
	}
	// The domain is known to exist: dumped by Load or created above, and
	// the view is dropped whenever a call fails.
	if err := s.vpp.AddToKnownBridge(ctx, idx, want, shg); err != nil {
		// A domain made for this interface alone must not outlive the
		// failure: an ADD that fails here leaves nothing in VPP.
		return errors.Join(err, s.pruneBridge(ctx, want))
	}
	s.joined(idx, want, shg, bd)
	return nil
}

// bridge returns bridge domain id, created (and owned) when VPP lacks it.
func (s *State) bridge(ctx context.Context, id uint32) (vpp.BridgeDomain, error) {
	if bd, ok := s.bds[id]; ok {
		return bd, nil
	}
	bd, err := s.vpp.CreateBridgeDomain(ctx, vpp.DefaultBridgeDomain(id, bridgeOwner))
	if err != nil {
		return vpp.BridgeDomain{}, err
	}
	s.bds[id] = bd
	return bd, nil
}

// detach takes idx out of bridge domain id and removes the domain when it
// is ours and now empty.
func (s *State) detach(ctx context.Context, idx, id uint32) error {
	if err := s.vpp.RemoveFromBridge(ctx, idx); err != nil {
		return err
	}
	bd := s.bds[id]
	bd.Members = slices.DeleteFunc(bd.Members, func(m vpp.BridgeMember) bool { return m.SwIfIndex == idx })
	s.bds[id] = bd
	delete(s.bdOf, idx)
	return s.pruneBridge(ctx, id)
}

func (s *State) pruneBridge(ctx context.Context, id uint32) error {
	bd, ok := s.bds[id]
	if owner, mine := bd.Owner(); !ok || !mine || owner != bridgeOwner || len(bd.Members) > 0 {
		return nil
	}
	if err := s.vpp.DeleteBridgeDomain(ctx, id); err != nil {
		return err
	}
	delete(s.bds, id)
	return nil
}

// PruneBridges removes every empty bridge domain uspace created, e.g. one
// whose last member went while the agent was down.
func (s *State) PruneBridges(ctx context.Context) error {
	var errs []error
	for id := range s.bds {
		errs = append(errs, s.pruneBridge(ctx, id))
	}
	return errors.Join(errs...)
}
