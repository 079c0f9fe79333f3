package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store/lite"
)

// Keys that carry the still-valid attachments of a GC. libcni sends both:
// the spec's name and the misspelt one of spec 1.1.0 (containernetworking/cni#1101).
const (
	keyValidAttachments = "cni.dev/valid-attachments"
	keyAttachments      = "cni.dev/attachments"
)

// validAttachments returns the attachments a GC must keep, and whether the
// caller sent a list at all.
func validAttachments(stdin []byte) (map[types.GCAttachment]bool, bool, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(stdin, &raw); err != nil {
		return nil, false, types.NewError(types.ErrDecodingFailure, "failed to load netconf: "+err.Error(), "")
	}
	data, ok := raw[keyValidAttachments]
	if !ok {
		data, ok = raw[keyAttachments]
	}
	if !ok {
		return nil, false, nil
	}
	var list []types.GCAttachment
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, false, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("invalid %s: %v", keyValidAttachments, err), "")
	}
	valid := make(map[types.GCAttachment]bool, len(list))
	for _, a := range list {
		valid[a] = true
	}
	return valid, true, nil
}

// cmdGC deletes the intents of this network (HostInterface.Network, the
// network the ADD came from, or the meta's entry for the interface) on this
// host for every attachment not in
// cni.dev/valid-attachments, and releases their IPAM allocations.
//
// Without the key (what `cnitool gc` sends) GC deletes nothing: an absent
// list says nothing about which attachments are valid, and treating it as
// "none" would tear down every container of the network on this host.
// (cnitool gc has already sent DEL for each attachment in its own cache.)
// An explicit empty list (or null) does mean "none is valid".
func (p *plugin) cmdGC(args *skel.CmdArgs) error {
	inv, err := p.setup("GC", args, false)
	if err != nil {
		return err
	}
	defer inv.closeLog()
	valid, given, err := validAttachments(args.StdinData)
	if err != nil {
		return err
	}
	if !given {
		inv.log.Info("GC without " + keyValidAttachments + ": deleting nothing")
		return nil
	}
	if inv.conf.Name == "" {
		return types.NewError(types.ErrInvalidNetworkConfig, "GC: the config has no name", "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(inv.us.AddTimeout))
	defer cancel()
	st, err := inv.connect(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	host := inv.us.Host
	stale, err := staleAttachments(ctx, st, host, inv.conf.Name, valid)
	if err != nil {
		return err
	}

	var errs []error
	for a := range stale {
		att := Attachment{Host: host, ContainerID: a.ContainerID, IfName: a.IfName}
		if _, err := deleteAttachment(ctx, st, att); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s/%s: %w", a.ContainerID, a.IfName, err))
			continue
		}
		inv.log.Info("GC deleted stale attachment", "gcContainer", a.ContainerID, "gcIfname", a.IfName)
		if inv.conf.IPAM.Type != "" {
			if err := p.ipamDelFor(ctx, inv, a); err != nil {
				errs = append(errs, fmt.Errorf("releasing IPAM of %s/%s: %w", a.ContainerID, a.IfName, err))
			}
		}
	}
	if inv.conf.IPAM.Type != "" {
		// Let the IPAM plugin collect what it still holds for attachments
		// outside the list (host-local ignores GC today).
		if err := invoke.DelegateGC(ctx, inv.conf.IPAM.Type, args.StdinData, nil); err != nil {
			errs = append(errs, fmt.Errorf("IPAM GC (%s): %w", inv.conf.IPAM.Type, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return types.NewError(types.ErrInternal, "GC: "+err.Error(), "")
	}
	inv.log.Info("GC done", "deleted", len(stale))
	return nil
}

// staleAttachments lists the attachments of network on host that are not
// in valid: those whose host-side intent names the network, and
// container-side intents left without their host side whose meta names it.
func staleAttachments(ctx context.Context, st *lite.Client, host, network string, valid map[types.GCAttachment]bool) (map[types.GCAttachment]bool, error) {
	stale := map[types.GCAttachment]bool{}
	hostSide, _, err := st.List(ctx, schema.InterfacesPrefix(host))
	if err != nil {
		return nil, etcdErr("listing this host's interfaces", err)
	}
	withHostSide := map[types.GCAttachment]bool{}
	for _, kv := range hostSide {
		hi, err := schema.DecodeAs[schema.HostInterface](kv.Value)
		if err != nil {
			continue
		}
		a := types.GCAttachment{ContainerID: hi.Container, IfName: hi.Name}
		withHostSide[a] = true
		if hi.Network == network && !valid[a] {
			stale[a] = true
		}
	}
	// Container-side intents left without their host side: their meta
	// names the network. One with a host side belongs to the network that
	// side names, which may be another of the container's networks.
	ctrSide, _, err := st.List(ctx, schema.ContainersPrefix(host))
	if err != nil {
		return nil, etcdErr("listing this host's containers", err)
	}
	metas := map[string]*schema.ContainerMeta{}
	for _, kv := range ctrSide {
		if k, err := schema.ParseKey(kv.Key); err == nil && k.Kind == schema.KindContainerMetaKey {
			if m, err := schema.DecodeAs[schema.ContainerMeta](kv.Value); err == nil {
				metas[k.Container] = m
			}
		}
	}
	for _, kv := range ctrSide {
		k, err := schema.ParseKey(kv.Key)
		if err != nil || k.Kind != schema.KindContainerInterfaceKey || metaNetwork(metas[k.Container], k.Interface) != network {
			continue
		}
		if a := (types.GCAttachment{ContainerID: k.Container, IfName: k.Interface}); !valid[a] && !withHostSide[a] {
			stale[a] = true
		}
	}
	return stale, nil
}

// ipamDelFor runs the IPAM plugin's DEL for another attachment than the
// one in the environment (GC has none).
func (p *plugin) ipamDelFor(ctx context.Context, inv *invocation, a types.GCAttachment) error {
	paths := filepath.SplitList(p.cniPath())
	plugin, err := invoke.FindInPath(inv.conf.IPAM.Type, paths)
	if err != nil {
		return err
	}
	return invoke.ExecPluginWithoutResult(ctx, plugin, inv.args.StdinData, &invoke.Args{
		Command:     "DEL",
		ContainerID: a.ContainerID,
		IfName:      a.IfName,
		Path:        p.cniPath(),
	}, nil)
}

// metaNetwork is the network an interface of the container was added
// from, as its meta records it: per interface, or (values written before
// Networks existed) the container's first network.
func metaNetwork(m *schema.ContainerMeta, ifname string) string {
	if m == nil {
		return ""
	}
	if n, ok := m.Networks[ifname]; ok {
		return n
	}
	return m.Network
}
