package cni

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/uspace-io/uspace/schema"
)

// cmdCheck compares prevResult, the config, the intents in etcd and the
// host agent's status, and fails naming the first kind of drift found
// (every drifting field of it).
func (p *plugin) cmdCheck(args *skel.CmdArgs) error {
	inv, err := p.setup("CHECK", args, true)
	if err != nil {
		return err
	}
	defer inv.closeLog()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(inv.us.AddTimeout))
	defer cancel()
	err = p.check(ctx, inv)
	var d *driftError
	if errors.As(err, &d) {
		err := types.NewError(types.ErrInternal, "CHECK: "+d.msg, "")
		inv.log.Warn("drift", "err", err)
		return err
	}
	if err != nil {
		return err
	}
	if inv.conf.IPAM.Type != "" {
		if err := invoke.DelegateCheck(ctx, inv.conf.IPAM.Type, args.StdinData, nil); err != nil {
			return err
		}
	}
	inv.log.Info("CHECK passed")
	return nil
}

// driftError is a difference CHECK found between what should be and what is.
type driftError struct{ msg string }

func (e *driftError) Error() string { return e.msg }

func drift(format string, a ...any) error { return &driftError{fmt.Sprintf(format, a...)} }

// check is CHECK but for IPAM: prevResult, then the intents, then the
// status.
func (p *plugin) check(ctx context.Context, inv *invocation) error {
	conf, att := inv.conf, inv.att
	prev, err := prevResult(conf)
	if err != nil {
		return err
	}
	if _, itf := containerIface(prev, att.IfName); itf == nil || itf.Sandbox != att.Netns {
		return drift("prevResult has no interface %s in sandbox %s", att.IfName, att.Netns)
	}
	st, err := inv.connect(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	cur, err := readAttachment(ctx, st, att, false)
	if err != nil {
		return etcdErr("reading the attachment", err)
	}
	gotHost, gotCtr, err := p.checkIntents(cur, conf, att, prev)
	if err != nil {
		return err
	}
	return checkStatus(att, cur, gotHost, gotCtr)
}

// prevResult is the config's prevResult, which CHECK requires.
func prevResult(conf *NetConf) (*types100.Result, error) {
	if conf.RawPrevResult == nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "CHECK: the config carries no prevResult", "")
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "CHECK: cannot parse prevResult: "+err.Error(), "")
	}
	prev, err := types100.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "CHECK: cannot convert prevResult: "+err.Error(), "")
	}
	return prev, nil
}

// checkIntents compares the attachment's intents with what the config and
// prevResult say they must be; it returns the host-side and container-side
// intents.
func (p *plugin) checkIntents(cur *attachmentState, conf *NetConf, att Attachment, prev *types100.Result) (*schema.HostInterface, *schema.ContainerInterface, error) {
	hostKey, ctrKey, metaKey := att.keys()
	switch {
	case cur.host == nil:
		return nil, nil, drift("host-side intent %s is missing", hostKey)
	case cur.ctr == nil:
		return nil, nil, drift("container-side intent %s is missing", ctrKey)
	case cur.meta == nil:
		return nil, nil, drift("container meta %s is missing", metaKey)
	}
	gotHost, err := schema.DecodeAs[schema.HostInterface](cur.host.Value)
	if err != nil {
		return nil, nil, drift("host-side intent %s unreadable: %v", hostKey, err)
	}
	gotCtr, err := schema.DecodeAs[schema.ContainerInterface](cur.ctr.Value)
	if err != nil {
		return nil, nil, drift("container-side intent %s unreadable: %v", ctrKey, err)
	}
	meta, err := schema.DecodeAs[schema.ContainerMeta](cur.meta.Value)
	if err != nil {
		return nil, nil, drift("container meta %s unreadable: %v", metaKey, err)
	}
	want, err := BuildIntents(conf, att, prev, p.now())
	if err != nil {
		return nil, nil, err
	}
	if want.Host.Memif != nil && gotHost.Memif != nil {
		want.Host.Memif.ID, want.Container.Memif.ID = gotHost.Memif.ID, gotHost.Memif.ID
	}
	// prevResult carries the container MAC the ADD chose and, from CNI
	// 1.1 on, the MTU the host agent chose; the status check compares the
	// MTU with the host agent's in every version.
	_, itf := containerIface(prev, att.IfName)
	if itf.Mac != "" {
		want.Container.MAC = itf.Mac
	}
	want.Container.MTU = cmp.Or(uint32(itf.Mtu), gotCtr.MTU)
	switch d, dc := diffObjects(gotHost, want.Host), diffObjects(gotCtr, want.Container); {
	case len(d) > 0:
		return nil, nil, drift("host-side intent %s differs from the config: %s", hostKey, strings.Join(d, "; "))
	case len(dc) > 0:
		return nil, nil, drift("container-side intent %s differs from the config and prevResult: %s", ctrKey, strings.Join(dc, "; "))
	case !slices.Contains(meta.Interfaces, att.IfName):
		return nil, nil, drift("container meta %s does not list interface %s (lists %v)", metaKey, att.IfName, meta.Interfaces)
	case meta.Netns != att.Netns:
		return nil, nil, drift("container meta %s has netns %q, CHECK was given %q", metaKey, meta.Netns, att.Netns)
	}
	return gotHost, gotCtr, nil
}

// checkStatus compares the host agent's status, read with the intents,
// with the intents.
func checkStatus(att Attachment, cur *attachmentState, gotHost *schema.HostInterface, gotCtr *schema.ContainerInterface) error {
	statusKey := schema.StatusKey(att.HostKey())
	skv := cur.status.KV
	if skv == nil {
		return drift("host agent on %s has no status at %s", att.Host, statusKey)
	}
	s, err := schema.DecodeAs[schema.InterfaceStatus](skv.Value)
	switch {
	case err != nil:
		return drift("status %s unreadable: %v", statusKey, err)
	case s.ObservedRevision < cur.host.ModRevision:
		return drift("host agent has applied revision %d, the intent is at revision %d", s.ObservedRevision, cur.host.ModRevision)
	case s.Error != "":
		return drift("host agent reports an error: %s", s.Error)
	case !s.Ready:
		return drift("host agent reports the interface not ready")
	case s.SocketPath != "" && s.SocketPath != socketOf(gotHost):
		return drift("host agent uses socket %s, the intent says %s", s.SocketPath, socketOf(gotHost))
	case s.MTU != gotCtr.MTU:
		return drift("host agent set MTU %d on the host side, the container side has %d (did the uplink's MTU change since the ADD?)", s.MTU, gotCtr.MTU)
	}
	return nil
}

// diffObjects lists every field (as a JSON path) where got and want
// differ, ignoring apiVersion and kind.
func diffObjects(got, want schema.Object) []string {
	g, w := flatten(got), flatten(want)
	keys := map[string]bool{}
	for k := range g {
		keys[k] = true
	}
	for k := range w {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if k == "apiVersion" || k == "kind" {
			continue
		}
		if g[k] != w[k] {
			out = append(out, fmt.Sprintf("%s is %s, want %s", k, orAbsent(g[k]), orAbsent(w[k])))
		}
	}
	sort.Strings(out)
	return out
}

func orAbsent(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}

func flatten(o any) map[string]string {
	b, _ := json.Marshal(o)
	var v any
	_ = json.Unmarshal(b, &v)
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x)
			}
		case []any:
			for i, x := range t {
				walk(fmt.Sprintf("%s[%d]", prefix, i), x)
			}
		default:
			b, _ := json.Marshal(t)
			out[prefix] = string(b)
		}
	}
	walk("", v)
	return out
}
