package cluster_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

const (
	spanNet    = "span"
	spanVNI    = 4242
	spanBridge = 4
)

// underlay is host i's tunnel end point in the cross-host tests.
func underlay(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}) }

// startSpanningHosts starts n hosts whose agents join networks that span
// hosts, each with an uplink on lo (the simulator makes no frames).
func startSpanningHosts(t *testing.T, e *harness.Etcd, n int) []*harness.Host {
	t.Helper()
	var hs []*harness.Host
	for i := range n {
		hs = append(hs, e.StartHostOn(t, fmt.Sprintf("node%d", i+1), harness.HostOptions{
			AgentFlags: []string{"--underlay-ip", underlay(i).String() + "/24", "--uplink", "lo"}}))
	}
	return hs
}

// spanIntent is a memif of container c on network span, which has a VNI.
func spanIntent(h *harness.Host, c string) map[string]schema.Object {
	hi := memifIntent(h, c, "net1", spanBridge)
	hi.Network, hi.VNI = spanNet, spanVNI
	return map[string]schema.Object{ifKey(h, c, "net1"): hi}
}

// vppOf dials h's VPP the way the agent does.
func vppOf(t *testing.T, h *harness.Host) *vpp.Client {
	t.Helper()
	c := vpp.Dial(vpp.Config{Socket: h.VPPSocket, ClientName: "cross-host-test"})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(bg(), harness.WaitTimeout)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatalf("connect to %s's VPP: %v", h.Name, err)
	}
	return c
}

// tunnelsIn lists h's VPP's uspace VXLAN tunnels as "peer@dst/vni in bd
// shg", peer being the host whose tunnel key owns it.
func tunnelsIn(h *harness.Host, c *vpp.Client, peers []*harness.Host) ([]string, error) {
	ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
	defer cancel()
	ifs, err := c.Interfaces(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: interfaces: %w", h.Name, err)
	}
	tuns, err := c.VXLANTunnels(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: VXLAN tunnels: %w", h.Name, err)
	}
	bds, err := c.BridgeDomains(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: bridge domains: %w", h.Name, err)
	}
	owner := map[uint32]string{}
	for _, i := range ifs {
		if o, ok := i.Owner(); ok {
			owner[i.SwIfIndex] = o
		}
	}
	var out []string
	for _, tun := range tuns {
		peer := "untagged"
		for _, p := range peers {
			if owner[tun.SwIfIndex] == vppstate.Owner(schema.TunnelKey(h.Name, spanNet, p.Name)) {
				peer = p.Name
			}
		}
		where := "no bridge"
		for _, bd := range bds {
			for _, m := range bd.Members {
				if m.SwIfIndex == tun.SwIfIndex {
					where = fmt.Sprintf("bd %d shg %d", bd.ID, m.SHG)
				}
			}
		}
		out = append(out, fmt.Sprintf("%s@%s>%s/%d %s", peer, tun.Src, tun.Dst, tun.VNI, where))
	}
	slices.Sort(out)
	return out, nil
}

// wantTunnel is how tunnelsIn shows h's tunnel to peer (host index pi).
func wantTunnel(hi int, peer string, pi int) string {
	return fmt.Sprintf("%s@%s>%s/%d bd %d shg 1", peer, underlay(hi), underlay(pi), spanVNI, spanBridge)
}

// eventuallyTunnels waits, bounded, until h's VPP holds exactly want.
// VPP has no event for a tunnel made, so this polls the dataplane (and
// rides out a VPP restart: the test's own connection comes back too).
func eventuallyTunnels(t *testing.T, h *harness.Host, c *vpp.Client, peers []*harness.Host, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(harness.WaitTimeout)
	for {
		got, err := tunnelsIn(h, c, peers)
		if err == nil && slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's VPP tunnels:\n got %v (%v)\nwant %v", h.Name, got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// members lists the member keys of network span, with their leases.
func members(t *testing.T, e *harness.Etcd) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, kv := range list(t, e, schema.MembersPrefix()) {
		out[kv.Key] = kv.Lease
	}
	return out
}

func tunnelStatus(h, peer *harness.Host) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindTunnelKey, Host: h.Name, Network: spanNet, Peer: peer.Name})
}

// Networks span hosts: containers of network span on hosts 1 and 2 get a
// VXLAN tunnel between those hosts' VPPs (none on host 3, which has no
// member), in the network's bridge domain with split-horizon group 1. The
// tunnels survive an agent restart untouched, come back after a VPP
// restart, go when the last member of either side goes, and a host whose
// lease expires is removed from its peers' tunnels.
func TestNetworksSpanHosts(t *testing.T) {
	e := startCluster(t)
	hs := startSpanningHosts(t, e, 3)
	h1, h2, h3 := hs[0], hs[1], hs[2]
	v1, v2, v3 := vppOf(t, h1), vppOf(t, h2), vppOf(t, h3)

	e.Put(t, merge(spanIntent(h1, "a1"), spanIntent(h1, "a2"), spanIntent(h2, "b1")))
	eventuallyTunnels(t, h1, v1, hs, wantTunnel(0, h2.Name, 1))
	eventuallyTunnels(t, h2, v2, hs, wantTunnel(1, h1.Name, 0))
	eventuallyTunnels(t, h3, v3, hs)
	harness.WaitStatus[schema.InterfaceStatus](t, e, tunnelStatus(h1, h2), 0, harness.Ready[schema.InterfaceStatus])
	harness.WaitStatus[schema.InterfaceStatus](t, e, tunnelStatus(h2, h1), 0, harness.Ready[schema.InterfaceStatus])

	t.Run("memberships are lease-bound and only where members are", func(t *testing.T) {
		got := members(t, e)
		want := map[string]int64{
			schema.MemberKey(h1.Name, spanNet): agentLease(t, e, h1.Name),
			schema.MemberKey(h2.Name, spanNet): agentLease(t, e, h2.Name),
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("member keys and leases:\n got %v\nwant %v", got, want)
		}
		kv, err := e.Store.Get(bg(), schema.MemberKey(h2.Name, spanNet))
		if err != nil || kv == nil {
			t.Fatalf("member of node2: %v %v", kv, err)
		}
		m, err := schema.DecodeAs[schema.Member](kv.Value)
		if err != nil || m.Underlay != underlay(1).String() || m.VNI != spanVNI {
			t.Errorf("member of node2: %+v %v", m, err)
		}
	})

	t.Run("uplinks carry the underlay addresses", func(t *testing.T) {
		for i, h := range hs {
			st := harness.WaitStatus[schema.InterfaceStatus](t, e, schema.StatusKey(schema.Key{Kind: schema.KindUplinkKey, Host: h.Name}), 0, harness.Ready[schema.InterfaceStatus])
			c := []*vpp.Client{v1, v2, v3}[i]
			addrs, err := c.InterfaceAddresses(bg(), st.SwIfIndex)
			if err != nil || len(addrs) != 1 || addrs[0].String() != underlay(i).String()+"/24" {
				t.Errorf("%s's uplink %s: addresses %v %v", h.Name, st.InterfaceName, addrs, err)
			}
			if !strings.HasPrefix(st.InterfaceName, "host-") {
				t.Errorf("%s's uplink is %q, want an af_packet host-lo", h.Name, st.InterfaceName)
			}
		}
	})

	t.Run("agent restart leaves the tunnels as they are", func(t *testing.T) {
		before := harness.WaitStatus[schema.InterfaceStatus](t, e, tunnelStatus(h1, h2), 0, harness.Ready[schema.InterfaceStatus])
		h1.Agent.Kill()
		h1.RestartAgent(t)
		// The restarted agent re-publishes under its new lease first.
		waitMember(t, e, h1, agentLease(t, e, h1.Name))
		eventuallyTunnels(t, h1, v1, hs, wantTunnel(0, h2.Name, 1))
		after := harness.WaitStatus[schema.InterfaceStatus](t, e, tunnelStatus(h1, h2), 0, harness.Ready[schema.InterfaceStatus])
		if after.SwIfIndex != before.SwIfIndex {
			t.Errorf("tunnel re-created across an agent restart: sw_if_index %d, then %d", before.SwIfIndex, after.SwIfIndex)
		}
	})

	t.Run("VPP restart: tunnels and uplink made again", func(t *testing.T) {
		if err := h2.VPP.Restart(); err != nil {
			t.Fatal(err)
		}
		eventuallyTunnels(t, h2, v2, hs, wantTunnel(1, h1.Name, 0))
	})

	t.Run("last member of a side goes: tunnels on both sides go", func(t *testing.T) {
		e.Delete(t, ifKey(h2, "b1", "net1"))
		e.WaitGone(t, schema.MemberKey(h2.Name, spanNet))
		e.WaitGone(t, tunnelStatus(h1, h2))
		e.WaitGone(t, tunnelStatus(h2, h1))
		eventuallyTunnels(t, h1, v1, hs)
		eventuallyTunnels(t, h2, v2, hs)
		// One of two members on host 1 going changes nothing.
		e.Put(t, spanIntent(h2, "b1"))
		eventuallyTunnels(t, h1, v1, hs, wantTunnel(0, h2.Name, 1))
		before := harness.WaitStatus[schema.InterfaceStatus](t, e, tunnelStatus(h2, h1), 0, harness.Ready[schema.InterfaceStatus])
		e.Delete(t, ifKey(h1, "a1", "net1"))
		// Once host 1 has removed a1, it has seen the delete: its
		// membership, its tunnel and host 2's tunnel must be as they were.
		e.WaitGone(t, ifStatusKey(h1, "a1", "net1"))
		if kv, err := e.Store.Get(bg(), schema.MemberKey(h1.Name, spanNet)); err != nil || kv == nil {
			t.Errorf("node1 left the network with a member left: %v %v", kv, err)
		}
		for _, side := range []struct {
			h    *harness.Host
			c    *vpp.Client
			want string
		}{{h1, v1, wantTunnel(0, h2.Name, 1)}, {h2, v2, wantTunnel(1, h1.Name, 0)}} {
			if got, err := tunnelsIn(side.h, side.c, hs); err != nil || !slices.Equal(got, []string{side.want}) {
				t.Errorf("%s's tunnels after one of two members on node1 went: %v (%v)", side.h.Name, got, err)
			}
		}
		after := harness.WaitStatus[schema.InterfaceStatus](t, e, tunnelStatus(h2, h1), 0, harness.Ready[schema.InterfaceStatus])
		if after.SwIfIndex != before.SwIfIndex {
			t.Errorf("node2's tunnel re-made: sw_if_index %d, then %d", before.SwIfIndex, after.SwIfIndex)
		}
	})

	t.Run("a third host joins: full mesh", func(t *testing.T) {
		e.Put(t, spanIntent(h3, "c1"))
		eventuallyTunnels(t, h1, v1, hs, wantTunnel(0, h2.Name, 1), wantTunnel(0, h3.Name, 2))
		eventuallyTunnels(t, h2, v2, hs, wantTunnel(1, h1.Name, 0), wantTunnel(1, h3.Name, 2))
		eventuallyTunnels(t, h3, v3, hs, wantTunnel(2, h1.Name, 0), wantTunnel(2, h2.Name, 1))
	})

	t.Run("lease expiry removes the dead host from its peers", func(t *testing.T) {
		h3.Agent.Kill() // no revoke: the lease runs out
		e.WaitGone(t, schema.MemberKey(h3.Name, spanNet))
		eventuallyTunnels(t, h1, v1, hs, wantTunnel(0, h2.Name, 1))
		eventuallyTunnels(t, h2, v2, hs, wantTunnel(1, h1.Name, 0))
		h3.RestartAgent(t)
		eventuallyTunnels(t, h1, v1, hs, wantTunnel(0, h2.Name, 1), wantTunnel(0, h3.Name, 2))
		eventuallyTunnels(t, h3, v3, hs, wantTunnel(2, h1.Name, 0), wantTunnel(2, h2.Name, 1))
	})
}

// waitMember waits for h's membership of span under lease.
func waitMember(t *testing.T, e *harness.Etcd, h *harness.Host, lease int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg(), harness.WaitTimeout)
	defer cancel()
	if _, err := e.Store.WaitFor(ctx, schema.MemberKey(h.Name, spanNet), 0, func(kv *store.KV) (bool, error) {
		return kv != nil && kv.Lease == lease, nil
	}); err != nil {
		t.Fatalf("%s's membership under lease %x: %v", h.Name, lease, err)
	}
}
