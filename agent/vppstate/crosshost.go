package vppstate

import (
	"context"
	"errors"
	"fmt"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/schema"
)

// loadCrossHost reads the VXLAN tunnels and af_packet interfaces of a VPP
// that has the plugins for them; one without has none to read.
func (s *State) loadCrossHost(ctx context.Context) error {
	for _, f := range []vpp.Feature{vpp.FeatureVXLAN, vpp.FeatureAFPacket} {
		var fe *vpp.FeatureError
		switch err := s.vpp.CheckFeature(ctx, f); {
		case errors.As(err, &fe):
			continue // nothing of it to read; creating one says why not
		case err != nil:
			return err
		case f == vpp.FeatureVXLAN:
			tuns, err := s.vpp.VXLANTunnels(ctx)
			if err != nil {
				return err
			}
			for _, t := range tuns {
				s.vxlans[t.SwIfIndex] = t
			}
		default:
			afs, err := s.vpp.AFPackets(ctx)
			if err != nil {
				return err
			}
			for _, a := range afs {
				s.afpkts[a.SwIfIndex] = a
			}
		}
	}
	return nil
}

// Identity names the VPP object an af_packet or VXLAN spec stands for,
// by what VPP itself knows it by (a Linux interface; endpoints and VNI)
// rather than by uspace's tag: what an operator may have made too. It is
// "" for the interfaces uspace alone names (memif, vhost-user).
func (spec Spec) Identity() string {
	switch {
	case spec.Type == schema.IfTypeAFPacket:
		return "af_packet host-" + spec.HostIf
	case spec.Type == schema.IfTypeVXLAN && spec.Tunnel != nil:
		return "vxlan tunnel " + vpp.VXLANTunnel{Src: spec.Tunnel.Src, Dst: spec.Tunnel.Dst, VNI: spec.Tunnel.VNI}.String()
	}
	return ""
}

// Holder returns the interface in VPP that is what spec names (Identity),
// whoever made it.
func (s *State) Holder(spec Spec) (vpp.Interface, bool) {
	found := func(idx uint32) (vpp.Interface, bool) {
		i, ok := s.ifs[idx]
		if !ok {
			i = vpp.Interface{SwIfIndex: idx}
		}
		return i, true
	}
	switch {
	case spec.Type == schema.IfTypeAFPacket:
		for idx, a := range s.afpkts {
			if a.HostIfName == spec.HostIf {
				return found(idx)
			}
		}
	case spec.Type == schema.IfTypeVXLAN && spec.Tunnel != nil:
		for idx, t := range s.vxlans {
			if t.Src == spec.Tunnel.Src && t.Dst == spec.Tunnel.Dst && t.VNI == spec.Tunnel.VNI {
				return found(idx)
			}
		}
	}
	return vpp.Interface{}, false
}

// ForeignError is a VPP object that is what a spec names (Identity) but
// not the spec owner's: made by an operator, or by uspace for another key.
// uspace neither modifies nor deletes it. It matches vpp.ErrConflict.
type ForeignError struct {
	Object    string
	SwIfIndex uint32
	Tag       string
}

func (e *ForeignError) Error() string {
	if owner, ok := vpp.TagOwner(e.Tag); ok {
		return fmt.Sprintf("%s (sw_if_index %d) exists in VPP for another uspace key (owner %s); left alone: a VPP object has one owner",
			e.Object, e.SwIfIndex, owner)
	}
	tag := ""
	if e.Tag != "" {
		tag = fmt.Sprintf(" (tag %q)", e.Tag)
	}
	return fmt.Sprintf("%s (sw_if_index %d) exists in VPP and was not made by uspace%s; left alone, uspace makes its own once it is gone",
		e.Object, e.SwIfIndex, tag)
}

func (e *ForeignError) Unwrap() error { return vpp.ErrConflict }

// Adopt makes the untagged interface that is what spec names (Identity)
// spec.Owner's, in place of what the owner had: what a crash between its
// create and its tag left. The caller holds the proof (the agent's record
// that it was creating it); a tagged one is never taken.
func (s *State) Adopt(ctx context.Context, spec Spec) error {
	h, held := s.Holder(spec)
	if !held || h.Tag != "" {
		return nil
	}
	if err := s.Remove(ctx, spec.Owner); err != nil {
		return err
	}
	if err := s.vpp.SetOwner(ctx, h.SwIfIndex, spec.Owner); err != nil {
		return err
	}
	h.Tag = vpp.TagPrefix + spec.Owner
	s.ifs[h.SwIfIndex] = h
	s.byOwner[spec.Owner] = h.SwIfIndex
	return nil
}

// createCrossHost makes a VXLAN tunnel or an af_packet interface and tags
// it. One that VPP holds already is not spec.Owner's (Ensure looked it up
// by its tag first): it is refused, whoever made it.
func (s *State) createCrossHost(ctx context.Context, spec Spec) (vpp.Interface, error) {
	if h, held := s.Holder(spec); held {
		return vpp.Interface{}, &ForeignError{Object: spec.Identity(), SwIfIndex: h.SwIfIndex, Tag: h.Tag}
	}
	var idx uint32
	var err error
	switch spec.Type {
	case schema.IfTypeVXLAN:
		t := spec.Tunnel
		if t == nil {
			return vpp.Interface{}, fmt.Errorf("create VXLAN tunnel for %s: no tunnel settings", spec.Owner)
		}
		if idx, err = s.vpp.CreateVXLANTunnel(ctx, t.Src, t.Dst, t.VNI); err != nil {
			return vpp.Interface{}, err
		}
		s.vxlans[idx] = vpp.VXLANTunnel{SwIfIndex: idx, Src: t.Src, Dst: t.Dst, VNI: t.VNI}
	default:
		mac, err := spec.mac()
		if err != nil {
			return vpp.Interface{}, err
		}
		if idx, err = s.vpp.CreateAFPacket(ctx, spec.HostIf, mac); err != nil {
			return vpp.Interface{}, err
		}
		s.afpkts[idx] = vpp.AFPacket{SwIfIndex: idx, HostIfName: spec.HostIf}
	}
	if err := s.vpp.SetOwner(ctx, idx, spec.Owner); err != nil {
		return vpp.Interface{}, err
	}
	return s.vpp.Interface(ctx, idx)
}

// deleteCrossHost deletes idx when it is a VXLAN tunnel or an af_packet
// interface, and says whether it was one.
func (s *State) deleteCrossHost(ctx context.Context, idx uint32) (bool, error) {
	if t, ok := s.vxlans[idx]; ok {
		if err := s.vpp.DeleteVXLANTunnel(ctx, t); err != nil {
			return true, err
		}
		delete(s.vxlans, idx)
		return true, nil
	}
	if a, ok := s.afpkts[idx]; ok {
		if err := s.vpp.DeleteAFPacket(ctx, a.HostIfName); err != nil {
			return true, err
		}
		delete(s.afpkts, idx)
		return true, nil
	}
	return false, nil
}
