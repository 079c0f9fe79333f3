package cluster_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// spanFlags join host i to networks that span hosts, its uplink on lo.
func spanFlags(i int) []string {
	return []string{"--underlay-ip", underlay(i).String() + "/24", "--uplink", "lo"}
}

// failing accepts a status that reports an error containing want, and
// that retrying will not cure.
func failing(want string) func(*schema.InterfaceStatus) bool {
	return func(s *schema.InterfaceStatus) bool {
		return !s.Ready && !s.Retrying && strings.Contains(s.Error, want)
	}
}

func tunnelStatusTo(h *harness.Host, network, peer string) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindTunnelKey, Host: h.Name, Network: network, Peer: peer})
}

func uplinkStatus(h *harness.Host) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindUplinkKey, Host: h.Name})
}

// peerMember is what the agent of a host that is not running would have
// published: a member of network span.
func peerMember(host string, vni uint32, addr netip.Addr) map[string]schema.Object {
	return map[string]schema.Object{schema.MemberKey(host, spanNet): &schema.Member{Host: host, Network: spanNet, VNI: vni, Underlay: addr.String()}}
}

// untouched fails unless VPP holds interface idx untagged, out of every
// bridge domain, with exactly addrs.
func untouched(t *testing.T, c *vpp.Client, idx uint32, addrs ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
	defer cancel()
	i, found, err := c.LookupInterface(ctx, idx)
	if err != nil || !found || i.Tag != "" {
		t.Fatalf("interface %d: %+v found %v, %v", idx, i, found, err)
	}
	have, err := c.InterfaceAddresses(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range have {
		got = append(got, p.String())
	}
	if !slices.Equal(got, addrs) {
		t.Errorf("%s: addresses %v, want %v", i.Name, got, addrs)
	}
	bds, err := c.BridgeDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, bd := range bds {
		for _, m := range bd.Members {
			if m.SwIfIndex == idx {
				t.Errorf("%s was put into bridge domain %d", i.Name, bd.ID)
			}
		}
	}
}

// An af_packet and a VXLAN tunnel an operator made before the agent
// started, on the uplink the agent is then given and with the endpoints
// and VNI of a tunnel it derives, are not uspace's: their statuses say so
// and that retrying will not help, VPP keeps them as they were (address,
// no tag, no bridge domain), and dropping --uplink later deletes neither.
func TestForeignUplinkAndTunnelLeftAlone(t *testing.T) {
	e := startCluster(t)
	var afp, tun uint32
	h := e.StartHostOn(t, "node1", harness.HostOptions{AgentFlags: spanFlags(0), BeforeAgent: func(h *harness.Host) {
		c := vppOf(t, h)
		ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
		defer cancel()
		var err error
		if afp, err = c.CreateAFPacket(ctx, "lo", nil); err != nil {
			t.Fatal(err)
		}
		if err := c.AddAddress(ctx, afp, netip.MustParsePrefix("10.9.9.1/24")); err != nil {
			t.Fatal(err)
		}
		if tun, err = c.CreateVXLANTunnel(ctx, underlay(0), underlay(1), spanVNI); err != nil {
			t.Fatal(err)
		}
	}})
	c := vppOf(t, h)
	e.Put(t, merge(spanIntent(h, "a1"), peerMember("node2", spanVNI, underlay(1))))

	harness.WaitStatus(t, e, uplinkStatus(h), 0, failing(fmt.Sprintf("af_packet host-lo (sw_if_index %d) exists in VPP and was not made by uspace", afp)))
	harness.WaitStatus(t, e, tunnelStatusTo(h, spanNet, "node2"), 0, failing(fmt.Sprintf("vxlan tunnel %s -> %s vni %d (sw_if_index %d) exists in VPP and was not made by uspace",
		underlay(0), underlay(1), spanVNI, tun)))
	harness.WaitStatus(t, e, ifStatusKey(h, "a1", "net1"), 0, harness.Ready[schema.InterfaceStatus])
	untouched(t, c, afp, "10.9.9.1/24")
	untouched(t, c, tun)

	if err := h.Agent.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	h.RestartAgentWith(t)
	e.WaitGone(t, uplinkStatus(h))
	e.WaitGone(t, tunnelStatusTo(h, spanNet, "node2"))
	untouched(t, c, afp, "10.9.9.1/24")
	untouched(t, c, tun)
}

// tunnelledPair starts two spanning hosts with a member of network span
// each, and waits for host 1's tunnel to host 2. It returns host 1's VPP.
func tunnelledPair(t *testing.T) (*harness.Etcd, []*harness.Host, *vpp.Client) {
	t.Helper()
	e := startCluster(t)
	hs := startSpanningHosts(t, e, 2)
	v1 := vppOf(t, hs[0])
	e.Put(t, merge(spanIntent(hs[0], "a1"), spanIntent(hs[1], "b1")))
	eventuallyTunnels(t, hs[0], v1, hs, wantTunnel(0, hs[1].Name, 1))
	return e, hs, v1
}

// A VNI joins one network across hosts, and an underlay address is one
// host's: a second local network with the VNI of another is refused,
// naming both, and gets neither membership nor tunnels; a host announcing
// another's underlay address gets no tunnel, and the first one's tunnel
// stays as it was. One VPP tunnel, one owner.
func TestOneVNIOneNetworkOneAddressOneHost(t *testing.T) {
	e, hs, v1 := tunnelledPair(t)
	h1, h2 := hs[0], hs[1]
	before := harness.WaitStatus(t, e, tunnelStatus(h1, h2), 0, harness.Ready[schema.InterfaceStatus])

	t.Run("a second network with a VNI in use", func(t *testing.T) {
		for _, h := range hs {
			other := memifIntent(h, "o"+h.Name, "net1", spanBridge+1)
			other.Network, other.VNI = "other", spanVNI
			e.Put(t, map[string]schema.Object{ifKey(h, "o"+h.Name, "net1"): other})
		}
		for _, h := range hs {
			st := harness.WaitStatus(t, e, ifStatusKey(h, "o"+h.Name, "net1"), 0, failing("network other has VNI 4242, which network span already uses"))
			t.Logf("%s: %s", h.Name, st.Error)
		}
		if kv, err := e.Store.Get(bg(), schema.MemberKey(h1.Name, "other")); err != nil || kv != nil {
			t.Errorf("membership of the refused network: %v %v", kv, err)
		}
		if kv, err := e.Store.Get(bg(), tunnelStatusTo(h1, "other", h2.Name)); err != nil || kv != nil {
			t.Errorf("tunnel of the refused network: %v %v", kv, err)
		}
		eventuallyTunnels(t, h1, v1, hs, wantTunnel(0, h2.Name, 1))
	})

	t.Run("a host announcing another's underlay address", func(t *testing.T) {
		e.Put(t, peerMember("node9", spanVNI, underlay(1)))
		harness.WaitStatus(t, e, tunnelStatusTo(h1, spanNet, "node9"), 0, failing("host node9 announces underlay 192.0.2.2, which host node2 announced first"))
		// The refused key must not have taken node2's tunnel over, even
		// for a moment: its status and its VPP object are as they were.
		eventuallyTunnels(t, h1, v1, hs, wantTunnel(0, h2.Name, 1))
		after := harness.WaitStatus(t, e, tunnelStatus(h1, h2), 0, harness.Ready[schema.InterfaceStatus])
		if after.SwIfIndex != before.SwIfIndex || after.UpdatedAt != before.UpdatedAt {
			t.Errorf("node2's tunnel status changed: %+v, then %+v", before, after)
		}
	})
}

// A peer that comes to disagree on the VNI gets a tunnel status saying so,
// and the tunnel made while they agreed stops forwarding: VPP holds no
// tunnel to it until they agree again.
func TestVNIDisagreementRemovesTheTunnel(t *testing.T) {
	e, hs, v1 := tunnelledPair(t)
	h1, h2 := hs[0], hs[1]

	moved := spanIntent(h2, "b1")
	moved[ifKey(h2, "b1", "net1")].(*schema.HostInterface).VNI = spanVNI + 1
	e.Put(t, moved)
	harness.WaitStatus(t, e, tunnelStatus(h1, h2), 0, failing(fmt.Sprintf("VNI %d", spanVNI+1)))
	eventuallyTunnels(t, h1, v1, hs)

	e.Put(t, spanIntent(h2, "b1"))
	eventuallyTunnels(t, h1, v1, hs, wantTunnel(0, h2.Name, 1))
}

// Values are trusted for where they are, not for what they say they are:
// an Uplink value put under interfaces/ makes no af_packet (before, the
// root agent put one on any NIC it named), a HostInterface whose names are
// not its key's is refused, and a member whose host is not its key's gets
// no tunnel.
func TestValuesTrustedByTheirKey(t *testing.T) {
	e := startCluster(t)
	h := e.StartHostOn(t, "node1", harness.HostOptions{AgentFlags: spanFlags(0)})
	c := vppOf(t, h)
	uplinks := func() []vpp.AFPacket {
		ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
		defer cancel()
		as, err := c.AFPackets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	harness.WaitStatus(t, e, uplinkStatus(h), 0, harness.Ready[schema.InterfaceStatus])
	var b [4]byte
	_, _ = rand.Read(b[:])
	nic := "usn" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "link", "add", nic, "type", "veth", "peer", "name", nic+"p").CombinedOutput(); err != nil {
		t.Fatalf("make a Linux interface: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", nic).Run() })

	misplaced := memifIntent(h, "c2", "net1", 0)
	e.Put(t, map[string]schema.Object{
		ifKey(h, "c1", "net1"): &schema.Uplink{Host: h.Name, HostIfName: nic, Address: "10.9.9.9/24"},
		ifKey(h, "c3", "net1"): misplaced,
	})
	harness.WaitStatus(t, e, ifStatusKey(h, "c1", "net1"), 0, failing("kind Uplink, want HostInterface"))
	harness.WaitStatus(t, e, ifStatusKey(h, "c3", "net1"), 0, failing(`invalid container "c2": must be "c3", as in its key`))
	if as := uplinks(); len(as) != 1 {
		t.Errorf("af_packets: %+v, want only the uplink", as)
	}

	e.Put(t, spanIntent(h, "a1"))
	forged := peerMember("node2", spanVNI, underlay(1))
	forged[schema.MemberKey("node2", spanNet)].(*schema.Member).Host = "node3"
	e.Put(t, forged)
	harness.WaitStatus(t, e, tunnelStatusTo(h, spanNet, "node2"), 0, failing(`invalid host "node3": must be "node2"`))
	eventuallyTunnels(t, h, c, nil)
}

// A Network object is the network of its key: a value naming another
// network changes nothing of that one, and a value that is not a valid
// Network is logged and reported in the statuses of the interfaces on it,
// which keep what they had.
func TestNetworkObjectsByKey(t *testing.T) {
	e := startCluster(t)
	h := e.StartHost(t, "node1")
	onNet := func(c, network string) map[string]schema.Object {
		hi := memifIntent(h, c, "net1", 7)
		hi.Network, hi.MTU = network, 0
		return map[string]schema.Object{ifKey(h, c, "net1"): hi}
	}
	e.Put(t, merge(onNet("r1", "red"), onNet("b1", "blue")))
	blue := harness.WaitStatus(t, e, ifStatusKey(h, "b1", "net1"), 0, harness.Ready[schema.InterfaceStatus])
	mtu := func() uint32 {
		c := vppOf(t, h)
		i, err := c.Interface(bg(), blue.SwIfIndex)
		if err != nil {
			t.Fatal(err)
		}
		return i.MTU
	}
	was := mtu()

	e.Put(t, map[string]schema.Object{schema.NetworkKey("red"): &schema.Network{Name: "blue", Bridge: 7, MTU: 1400}})
	harness.WaitStatus(t, e, ifStatusKey(h, "r1", "net1"), 0, failing(`network red: its object is refused`))
	if got := mtu(); got != was {
		t.Errorf("red's object named blue and changed blue's MTU: %d, was %d", got, was)
	}

	if _, err := e.Store.Apply(bg(), store.Op{Key: schema.NetworkKey("blue"), Value: []byte(`{"apiVersion":"uspace/v1","kind":"Network","name":"blue","bridgeDomain":0}`)}); err != nil {
		t.Fatal(err)
	}
	harness.WaitStatus(t, e, ifStatusKey(h, "b1", "net1"), 0, failing("network blue: its object is refused"))
	if out := h.Agent.Output(); !strings.Contains(out, "network object refused") {
		t.Errorf("the refused object was not logged:\n%s", out)
	}
	if got := mtu(); got != was {
		t.Errorf("blue's interface changed: MTU %d, was %d", got, was)
	}
}

// What a crash between creating the uplink and tagging it leaves is the
// agent's own all the same: the uplink's status recorded the create before
// it was made, so the restarted agent adopts the untagged af_packet (same
// sw_if_index, no second one) instead of refusing it as an operator's.
func TestUntaggedLeftByACrashIsAdopted(t *testing.T) {
	e := startCluster(t)
	h := e.StartHostOn(t, "node1", harness.HostOptions{AgentFlags: spanFlags(0), BeforeAgent: func(h *harness.Host) {
		if err := h.VPP.FailNext("sw_interface_tag_add_del", 1<<20, -1); err != nil {
			t.Fatal(err)
		}
	}})
	st := harness.WaitStatus(t, e, uplinkStatus(h), 0, func(s *schema.InterfaceStatus) bool { return s.Error != "" && s.Creating != "" })
	if !strings.Contains(st.Error, "tag") || st.Creating != "af_packet host-lo" {
		t.Fatalf("uplink status while its tag fails: %+v", st)
	}
	h.Agent.Kill()
	if err := h.VPP.FailNext("sw_interface_tag_add_del", 0, 0); err != nil {
		t.Fatal(err)
	}
	c := vppOf(t, h)
	as, err := c.AFPackets(bg())
	if err != nil || len(as) != 1 {
		t.Fatalf("af_packets the crash left: %+v %v", as, err)
	}
	h.RestartAgent(t)
	st = harness.WaitStatus(t, e, uplinkStatus(h), 0, harness.Ready[schema.InterfaceStatus])
	if st.SwIfIndex != as[0].SwIfIndex || st.Creating != "" {
		t.Errorf("uplink after the restart: %+v, the crash left sw_if_index %d", st, as[0].SwIfIndex)
	}
	if now, err := c.AFPackets(bg()); err != nil || len(now) != 1 {
		t.Errorf("af_packets after the restart: %+v %v", now, err)
	}
}
