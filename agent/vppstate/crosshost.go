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

// createCrossHost makes a VXLAN tunnel or an af_packet interface and tags
// it. Both creates find an untagged one left by a crash between create and
// tag, so a retry adopts it rather than failing on "exists".
func (s *State) createCrossHost(ctx context.Context, spec Spec) (vpp.Interface, error) {
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
		if idx, err = s.vpp.CreateAFPacket(ctx, spec.HostIf); err != nil {
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
