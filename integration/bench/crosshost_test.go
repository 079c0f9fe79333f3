package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
)

// crossHostPhase measures how fast a network starts to span two hosts:
// the first member of a network with a VNI put on host x until host y's
// status of its VXLAN tunnel to x is ready (x's agent sees the intent,
// publishes its membership, y's agent sees it, makes the tunnel and
// writes the status), and the member's delete until y's tunnel is gone.
// Floor: three etcd put->watch hops (a), taken interleaved.
func (b *bench) crossHostPhase(t *testing.T) {
	var hs []*harness.Host
	for i, n := range []string{"span-x", "span-y"} {
		hs = append(hs, b.etcd.StartHostOn(t, n, harness.HostOptions{
			AgentFlags: []string{"--underlay-ip", fmt.Sprintf("192.0.2.%d/24", i+1), "--uplink", "lo"}}))
	}
	x, y := hs[0], hs[1]
	const network, vni = "span", 4242
	// y has a member all along: only x's joining is measured.
	put(t, b.etcd.Store, schema.InterfaceKey(y.Name, "resident", "net1"), spanIntent(y, "resident", network, vni))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sk := schema.StatusKey(schema.Key{Kind: schema.KindTunnelKey, Host: y.Name, Network: network, Peer: x.Name})
	ch := b.watchPrefix(t, ctx, schema.StatusHostPrefix(y.Name)+"tunnels/")
	key := schema.InterfaceKey(x.Name, "joiner", "net1")
	var join, leave []time.Duration
	pr := &pairs{}
	for i := range b.cfg.samples + warmup {
		if i >= warmup {
			pr.add("a", b.probe.a())
		}
		start := time.Now()
		put(t, b.etcd.Store, key, spanIntent(x, "joiner", network, vni))
		if _, err := waitStatusValue(ch, sk, 0); err != nil {
			t.Fatalf("cross-host sample %d: %v", i, err)
		}
		joined := time.Since(start)
		start = time.Now()
		del(t, b.etcd.Store, key)
		if err := waitGone(ch, sk); err != nil {
			t.Fatal(err)
		}
		if i >= warmup {
			join, leave = append(join, joined), append(leave, time.Since(start))
		}
	}
	f50, f99 := pr.floor("a", "a", "a")
	b.res.latencyRow("cross_host_tunnel_up", newDist(join), f50, f99, "3a").note(
		"a memif intent of a network with a VNI put on host x (vppsim) until host y's VXLAN tunnel to x is ready in y's status: " +
			"x's watch, x's membership put, y's members watch, y's tunnel (create, tag, bridge with split-horizon group, up), " +
			"y's status; floor: three etcd put->watch hops, interleaved")
	b.res.latencyRow("cross_host_tunnel_down", newDist(leave), f50, f99, "3a").note(
		"the same intent deleted until y's tunnel status is gone (tunnel deleted from y's VPP first)")
}

// spanIntent is a memif on network in bridge domain 4 with a VNI.
func spanIntent(h *harness.Host, ctr, network string, vni uint32) *schema.HostInterface {
	return &schema.HostInterface{Host: h.Name, Container: ctr, Name: "net1", Type: schema.IfTypeMemif,
		NetType: schema.NetTypeBridge, Network: network, Bridge: 4, VNI: vni,
		Memif: &schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet, SocketPath: filepath.Join(h.SharedDir, ctr+".sock")}}
}
