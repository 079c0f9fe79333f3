package realdp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/schema"
)

// TestForeignObjectsLeftAloneOnRealVPP: what an operator made with vppctl
// before the host agent started, an af_packet on the Linux interface the
// agent is then given as --uplink (with an address of the operator's) and
// a VXLAN tunnel with the endpoints and VNI of a tunnel the agent derives,
// is not uspace's. Real VPP 25.02 keeps both as they were (address, no
// tag, no bridge domain), their statuses say why and that retrying will
// not help, and dropping --uplink later deletes neither.
func TestForeignObjectsLeftAloneOnRealVPP(t *testing.T) {
	realdp.NeedVPP(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	sfx := hex.EncodeToString(b[:])
	link := "uso" + sfx
	ns := realdp.Netns(t, "uso"+sfx)
	realdp.Run(t, "ip", "link", "add", link, "type", "veth", "peer", "name", "usp"+sfx)
	realdp.Run(t, "ip", "link", "set", link, "netns", ns)

	const network = "span"
	e := harness.StartEtcd(t)
	h := e.StartHostOn(t, "node1", harness.HostOptions{RealVPP: true, VPPNetns: ns, VPPPlugins: []string{"vxlan", "af_packet"},
		AgentFlags: []string{"--underlay-ip", "192.168.79.1/24", "--uplink", link, "--uplink-netns", ns},
		BeforeAgent: func(h *harness.Host) {
			h.RealVPP.CLI(t, "create host-interface name "+link)
			h.RealVPP.CLI(t, "set interface ip address host-"+link+" 10.9.9.1/24")
			h.RealVPP.CLI(t, "create vxlan tunnel src 192.168.79.1 dst 192.168.79.2 vni 4242")
		}})
	hi := &schema.HostInterface{Host: h.Name, Container: "c1", Name: "net1", Type: schema.IfTypeMemif, NetType: schema.NetTypeBridge,
		Network: network, Bridge: 4, VNI: 4242,
		Memif: &schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet, SocketPath: filepath.Join(h.SharedDir, "c1-net1")}}
	e.Put(t, map[string]schema.Object{
		schema.InterfaceKey(h.Name, "c1", "net1"): hi,
		schema.MemberKey("node2", network):        &schema.Member{Host: "node2", Network: network, VNI: 4242, Underlay: "192.168.79.2"},
	})

	c := vpp.Dial(vpp.Config{Socket: h.VPPSocket, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ok(t, c.WaitConnected(ctx))
	afp, tun := foreignObjects(ctx, t, c, "host-"+link)
	refused := func(what string) func(*schema.InterfaceStatus) bool {
		return func(s *schema.InterfaceStatus) bool {
			return !s.Ready && !s.Retrying && strings.Contains(s.Error, what+" exists in VPP and was not made by uspace")
		}
	}
	uplink := schema.StatusKey(schema.Key{Kind: schema.KindUplinkKey, Host: h.Name})
	tunnel := schema.StatusKey(schema.Key{Kind: schema.KindTunnelKey, Host: h.Name, Network: network, Peer: "node2"})
	st := harness.WaitStatus(t, e, uplink, 0, refused(fmt.Sprintf("af_packet host-%s (sw_if_index %d)", link, afp.SwIfIndex)))
	t.Logf("uplink: %s", st.Error)
	st = harness.WaitStatus(t, e, tunnel, 0, refused(fmt.Sprintf("vxlan tunnel 192.168.79.1 -> 192.168.79.2 vni 4242 (sw_if_index %d)", tun.SwIfIndex)))
	t.Logf("tunnel: %s", st.Error)
	harness.WaitStatus(t, e, schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: h.Name, Container: "c1", Interface: "net1"}), 0,
		harness.Ready[schema.InterfaceStatus])
	leftAlone(ctx, t, c, afp, tun)

	if err := h.Agent.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	h.RestartAgentWith(t)
	e.WaitGone(t, uplink)
	e.WaitGone(t, tunnel)
	leftAlone(ctx, t, c, afp, tun)
	t.Logf("after --uplink was dropped:\n%s", h.RealVPP.CLI(t, "show interface addr"))
}

// foreignObjects finds the operator's af_packet (by name) and VXLAN tunnel.
func foreignObjects(ctx context.Context, t *testing.T, c *vpp.Client, afpName string) (afp vpp.Interface, tun vpp.VXLANTunnel) {
	t.Helper()
	ifs, err := c.Interfaces(ctx)
	ok(t, err)
	i := slices.IndexFunc(ifs, func(i vpp.Interface) bool { return i.Name == afpName })
	tuns, err := c.VXLANTunnels(ctx)
	ok(t, err)
	if i < 0 || len(tuns) != 1 {
		t.Fatalf("the operator's objects: interfaces %+v, tunnels %+v", ifs, tuns)
	}
	return ifs[i], tuns[0]
}

// leftAlone fails unless the operator's objects are as the operator made
// them: untagged, out of every bridge domain, the af_packet with its one
// address.
func leftAlone(ctx context.Context, t *testing.T, c *vpp.Client, afp vpp.Interface, tun vpp.VXLANTunnel) {
	t.Helper()
	nowAfp, nowTun := foreignObjects(ctx, t, c, afp.Name)
	if nowAfp.SwIfIndex != afp.SwIfIndex || nowAfp.Tag != "" || nowTun != tun {
		t.Errorf("af_packet %+v, then %+v; tunnel %+v, then %+v", afp, nowAfp, tun, nowTun)
	}
	if i, err := c.Interface(ctx, tun.SwIfIndex); err != nil || i.Tag != "" {
		t.Errorf("tunnel interface %+v %v", i, err)
	}
	addrs, err := c.InterfaceAddresses(ctx, afp.SwIfIndex)
	if err != nil || len(addrs) != 1 || addrs[0].String() != "10.9.9.1/24" {
		t.Errorf("%s: addresses %v %v, want only the operator's 10.9.9.1/24", afp.Name, addrs, err)
	}
	bds, err := c.BridgeDomains(ctx)
	ok(t, err)
	for _, bd := range bds {
		for _, m := range bd.Members {
			if m.SwIfIndex == afp.SwIfIndex || m.SwIfIndex == tun.SwIfIndex {
				t.Errorf("sw_if_index %d was put into bridge domain %d", m.SwIfIndex, bd.ID)
			}
		}
	}
}
