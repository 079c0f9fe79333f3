package vpp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/vxlan"
	"go.fd.io/govpp/core"
)

// Feature is an optional part of the driver: its messages belong to a VPP
// plugin many installations run without, so they are not among
// RequiredMessages and a VPP lacking them is still accepted at connect.
// CheckFeature says whether the connected VPP has one; the operations of
// a feature fail with its *FeatureError (matching ErrUnsupported) when it
// does not.
type Feature int

const (
	// FeatureVXLAN: VXLAN tunnels (VXLANTunnels, CreateVXLANTunnel,
	// DeleteVXLANTunnel), VPP's vxlan plugin (vxlan_plugin.so).
	FeatureVXLAN Feature = iota + 1
	// FeatureAFPacket: interfaces on Linux interfaces (AFPackets,
	// CreateAFPacket, DeleteAFPacket), VPP's af_packet plugin
	// (af_packet_plugin.so).
	FeatureAFPacket
)

// Features lists every optional feature.
var Features = []Feature{FeatureVXLAN, FeatureAFPacket}

func (f Feature) String() string {
	switch f {
	case FeatureVXLAN:
		return "vxlan"
	case FeatureAFPacket:
		return "af_packet"
	}
	return fmt.Sprintf("Feature(%d)", int(f))
}

// Plugin is the VPP plugin file that provides the feature.
func (f Feature) Plugin() string { return f.String() + "_plugin.so" }

// ErrUnsupported: the connected VPP lacks an optional feature (its plugin
// is not loaded, or its messages have other CRCs).
var ErrUnsupported = errors.New("not supported by this VPP")

// FeatureError says which messages of a feature the connected VPP lacks.
type FeatureError struct {
	Feature      Feature
	Version      string   // VPP version from show_version
	Incompatible []string // "name_crc" the feature needs and VPP does not offer
}

func (e *FeatureError) Error() string {
	return fmt.Sprintf("VPP %s lacks the %s plugin (%s unknown or CRC mismatch): enable %s",
		e.Version, e.Feature, strings.Join(e.Incompatible, ", "), e.Feature.Plugin())
}

// Is makes a *FeatureError match ErrUnsupported.
func (e *FeatureError) Is(target error) bool { return target == ErrUnsupported }

// OptionalMessages lists the binapi messages of a feature.
func OptionalMessages(f Feature) []api.Message {
	switch f {
	case FeatureVXLAN:
		return []api.Message{
			(*vxlan.VxlanAddDelTunnelV3)(nil), (*vxlan.VxlanAddDelTunnelV3Reply)(nil),
			(*vxlan.VxlanTunnelV2Dump)(nil), (*vxlan.VxlanTunnelV2Details)(nil),
		}
	case FeatureAFPacket:
		return []api.Message{
			(*af_packet.AfPacketCreateV3)(nil), (*af_packet.AfPacketCreateV3Reply)(nil),
			(*af_packet.AfPacketDelete)(nil), (*af_packet.AfPacketDeleteReply)(nil),
			(*af_packet.AfPacketDump)(nil), (*af_packet.AfPacketDetails)(nil),
		}
	}
	return nil
}

// checkFeatures checks every optional feature on a new connection: nil
// for the features VPP has.
func checkFeatures(conn *core.Connection, version string) map[Feature]error {
	out := make(map[Feature]error, len(Features))
	ch, err := conn.NewAPIChannel()
	if err != nil {
		for _, f := range Features {
			out[f] = opErr("check "+f.String()+" support", "", nil, err)
		}
		return out
	}
	defer ch.Close()
	for _, f := range Features {
		err := ch.CheckCompatiblity(OptionalMessages(f)...)
		var ce *api.CompatibilityError
		switch {
		case err == nil:
			out[f] = nil
		case errors.As(err, &ce):
			out[f] = &FeatureError{Feature: f, Version: version, Incompatible: ce.IncompatibleMessages}
		default:
			out[f] = opErr("check "+f.String()+" support", "", nil, err)
		}
	}
	return out
}

// CheckFeature reports whether the connected VPP supports f: nil when it
// does, an error matching ErrUnsupported (a *FeatureError naming the
// missing messages and the plugin to enable) when it does not, or one
// matching ErrNotConnected. It asks nothing of VPP: the answer was found
// when the connection was made (and is found again with every new one).
func (c *Client) CheckFeature(ctx context.Context, f Feature) error {
	_, err := c.sessionWith(f, "check "+f.String()+" support", "")
	return err
}

// sessionWith is sessionFor for an operation of feature f.
func (c *Client) sessionWith(f Feature, op, object string) (*session, error) {
	s, err := c.sessionFor(op, object)
	if err != nil {
		return nil, err
	}
	ferr, known := s.features[f]
	if !known {
		return nil, opErr(op, object, ErrInvalid, fmt.Errorf("unknown feature %v", f))
	}
	if ferr != nil {
		var fe *FeatureError
		if errors.As(ferr, &fe) {
			return nil, opErr(op, object, ErrUnsupported, fe)
		}
		return nil, ferr
	}
	return s, nil
}

// beginWith is begin for an operation of feature f.
func (c *Client) beginWith(ctx context.Context, f Feature, op, object string) (*session, context.Context, context.CancelFunc, error) {
	s, err := c.sessionWith(f, op, object)
	if err != nil {
		return nil, nil, nil, err
	}
	rctx, cancel := c.reqCtx(ctx, 1)
	return s, rctx, cancel, nil
}
