package cluster_test

import (
	"context"
	"slices"
	"testing"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// What a host agent that joins networks spanning hosts (--uplink) derives
// from the intents of every host: its uplink, and a VXLAN tunnel per
// network it has members of and per other host with members of it. The
// expectations are worked out here from the intents alone, not from the
// memberships the agents publish.

// derivedIf is one uplink or tunnel a host's VPP must hold.
type derivedIf struct {
	key    string // the derived key, whose owner tags the interface
	typ    schema.IfType
	bridge uint32
	member string // a tunnel's peer membership, "" for the uplink
}

// agentFlag is the value of flag in h's agent command line, "" without it.
func agentFlag(h *harness.Host, flag string) string {
	args := h.AgentArgs()
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// spanning lists, per host, the networks with a VNI its interface intents
// are members of, with the bridge domain of each (the lowest of its
// intents', as the agent picks).
func spanning(t testing.TB, e *harness.Etcd) map[string]map[string]uint32 {
	t.Helper()
	out := map[string]map[string]uint32{}
	for _, kv := range list(t, e, schema.HostsPrefix()) {
		k, err := schema.ParseKey(kv.Key)
		if err != nil || k.Kind != schema.KindInterfaceKey {
			continue
		}
		hi, err := schema.DecodeAs[schema.HostInterface](kv.Value)
		if err != nil || hi.Network == "" || hi.VNI == 0 || hi.NetType != schema.NetTypeBridge {
			continue
		}
		if out[k.Host] == nil {
			out[k.Host] = map[string]uint32{}
		}
		if b, ok := out[k.Host][hi.Network]; !ok || hi.Bridge < b {
			out[k.Host][hi.Network] = hi.Bridge
		}
	}
	return out
}

// expectedDerived is what h's agent must have derived now; nil when it
// does not join networks spanning hosts.
func expectedDerived(t testing.TB, e *harness.Etcd, h *harness.Host) []derivedIf {
	t.Helper()
	if agentFlag(h, "--uplink") == "" {
		return nil
	}
	out := []derivedIf{{key: schema.UplinkKey(h.Name), typ: schema.IfTypeAFPacket}}
	nets := spanning(t, e)
	for network, bridge := range nets[h.Name] {
		for peer, theirs := range nets {
			if _, ok := theirs[network]; ok && peer != h.Name {
				out = append(out, derivedIf{key: schema.TunnelKey(h.Name, network, peer), typ: schema.IfTypeVXLAN,
					bridge: bridge, member: schema.MemberKey(peer, network)})
			}
		}
	}
	return out
}

// convergedDerived waits until h's agent has applied its uplink and every
// tunnel the intents call for, at the revision of the peer's membership
// (which the peer's agent publishes first), and removed every other
// tunnel, and returns what VPP must hold for them.
func convergedDerived(t testing.TB, e *harness.Etcd, h *harness.Host) []wantIf {
	t.Helper()
	exp := expectedDerived(t, e, h)
	if exp == nil {
		return nil
	}
	var want []wantIf
	keep := map[string]bool{}
	for _, d := range exp {
		var rev int64
		if d.member != "" {
			rev = waitExists(t, e, d.member)
		}
		k, _ := schema.ParseKey(d.key)
		st := harness.WaitStatus[schema.InterfaceStatus](t, e, schema.StatusKey(k), rev, harness.Ready[schema.InterfaceStatus])
		keep[schema.StatusKey(k)] = true
		want = append(want, wantIf{key: d.key, typ: d.typ, bridge: d.bridge, idx: st.SwIfIndex})
	}
	for _, kv := range list(t, e, schema.StatusHostPrefix(h.Name)) {
		k, err := schema.ParseKey(kv.Key)
		if err == nil && k.Kind == schema.KindTunnelKey && !keep[kv.Key] {
			e.WaitGone(t, kv.Key)
		}
	}
	return want
}

// currentDerived is convergedDerived without waiting: a status missing,
// not ready or left over is an error.
func currentDerived(t testing.TB, e *harness.Etcd, h *harness.Host, statuses map[string]store.KV) []wantIf {
	t.Helper()
	var want []wantIf
	keep := map[string]bool{}
	for _, d := range expectedDerived(t, e, h) {
		k, _ := schema.ParseKey(d.key)
		sk := schema.StatusKey(k)
		keep[sk] = true
		kv, ok := statuses[sk]
		st, err := schema.DecodeAs[schema.InterfaceStatus](kv.Value)
		if !ok || err != nil || !st.Ready {
			t.Errorf("status of %s: %s", d.key, kv.Value)
			continue
		}
		want = append(want, wantIf{key: d.key, typ: d.typ, bridge: d.bridge, idx: st.SwIfIndex})
	}
	for sk := range statuses {
		if k, err := schema.ParseKey(sk); err == nil && k.Kind == schema.KindTunnelKey && !keep[sk] {
			t.Errorf("tunnel status %s left over", sk)
		}
	}
	return want
}

// waitExists watches key until it exists and returns its revision.
func waitExists(t testing.TB, e *harness.Etcd, key string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg(), harness.WaitTimeout)
	defer cancel()
	kv, err := e.Store.WaitFor(ctx, key, 0, func(kv *store.KV) (bool, error) { return kv != nil, nil })
	if err != nil {
		t.Fatalf("wait for %s: %v", key, err)
	}
	return kv.ModRevision
}
