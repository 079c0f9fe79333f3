package vpp_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/integration/vppsim"
)

// onBothWithPlugins is onBoth with a real VPP that has the vxlan and
// af_packet plugins.
func onBothWithPlugins(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("vppsim", func(t *testing.T) { test(t, newEnv(t, vppsim.Options{})) })
	t.Run("real VPP", func(t *testing.T) {
		v := realdp.StartVPP(t, realdp.VPPOptions{Name: "driver", Plugins: []string{"vxlan", "af_packet"}})
		test(t, connect(t, shortTempDir(t), v.APISocket, nil, true))
	})
}

// veth creates a veth pair in the test's network namespace (where both the
// simulator and the real VPP look) and returns one end's name.
func veth(t *testing.T) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	a := "udv" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "link", "add", a, "type", "veth", "peer", "name", "udw"+hex.EncodeToString(b[:])).CombinedOutput(); err != nil {
		t.Skipf("cannot create a veth pair: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", a).Run() })
	return a
}

func TestVXLANTunnelLifecycle(t *testing.T) {
	onBothWithPlugins(t, func(t *testing.T, e *env) {
		c, ctx := e.client, e.ctx
		ok(t, c.CheckFeature(ctx, vpp.FeatureVXLAN))
		src, dst := netip.MustParseAddr("192.168.77.1"), netip.MustParseAddr("192.168.77.2")
		if _, err := c.CreateVXLANTunnel(ctx, src, src, 1); !errors.Is(err, vpp.ErrInvalid) {
			t.Fatalf("src = dst: %v", err)
		}
		idx := must(c.CreateVXLANTunnel(ctx, src, dst, 4242))(t)
		// One that exists is no one's to take over by creating it again.
		if _, err := c.CreateVXLANTunnel(ctx, src, dst, 4242); !errors.Is(err, vpp.ErrConflict) || !strings.Contains(err.Error(), fmt.Sprintf("sw_if_index %d", idx)) {
			t.Fatalf("second create: %v", err)
		}
		ts := must(c.VXLANTunnels(ctx))(t)
		if len(ts) != 1 || ts[0] != (vpp.VXLANTunnel{SwIfIndex: idx, Src: src, Dst: dst, VNI: 4242}) {
			t.Fatalf("tunnels: %+v", ts)
		}
		i := must(c.Interface(ctx, idx))(t)
		if i.Name != "vxlan_tunnel0" || i.DevType != "VXLAN" || !i.AdminUp {
			t.Fatalf("interface: %+v", i)
		}
		ok(t, c.SetOwner(ctx, idx, "net/peer"))
		must(c.CreateBridgeDomain(ctx, vpp.DefaultBridgeDomain(22, "bridge")))(t)
		ok(t, c.AddToBridge(ctx, idx, 22, 1))
		bd := must(c.BridgeDomain(ctx, 22))(t)
		if len(bd.Members) != 1 || bd.Members[0] != (vpp.BridgeMember{SwIfIndex: idx, SHG: 1}) {
			t.Fatalf("members: %+v", bd.Members)
		}
		ok(t, c.DeleteVXLANTunnel(ctx, ts[0]))
		ok(t, c.DeleteVXLANTunnel(ctx, ts[0]))
		if ts := must(c.VXLANTunnels(ctx))(t); len(ts) != 0 {
			t.Fatalf("tunnels after delete: %+v", ts)
		}
		if _, found := must2(c.LookupInterface(ctx, idx))(t); found {
			t.Fatal("interface left after delete")
		}
		if bd := must(c.BridgeDomain(ctx, 22))(t); len(bd.Members) != 0 {
			t.Fatalf("members after delete: %+v", bd.Members)
		}
	})
}

func TestAFPacketLifecycle(t *testing.T) {
	link := veth(t)
	li, err := net.InterfaceByName(link)
	ok(t, err)
	onBothWithPlugins(t, func(t *testing.T, e *env) {
		c, ctx := e.client, e.ctx
		ok(t, c.CheckFeature(ctx, vpp.FeatureAFPacket))
		_, err := c.CreateAFPacket(ctx, "udvnosuch0", nil)
		wantRetval(t, err, -71, vpp.ErrNotFound)
		idx := must(c.CreateAFPacket(ctx, link, li.HardwareAddr))(t)
		if _, err := c.CreateAFPacket(ctx, link, nil); !errors.Is(err, vpp.ErrConflict) || !strings.Contains(err.Error(), fmt.Sprintf("sw_if_index %d", idx)) {
			t.Fatalf("second create: %v", err)
		}
		if as := must(c.AFPackets(ctx))(t); len(as) != 1 || as[0] != (vpp.AFPacket{SwIfIndex: idx, HostIfName: link}) {
			t.Fatalf("af_packets: %+v", as)
		}
		i := must(c.Interface(ctx, idx))(t)
		if i.Name != "host-"+link || i.DevType != "af-packet" || i.AdminUp || i.MAC.String() != li.HardwareAddr.String() {
			t.Fatalf("interface: %+v, Linux MAC %s", i, li.HardwareAddr)
		}
		ok(t, c.DeleteAFPacket(ctx, link))
		ok(t, c.DeleteAFPacket(ctx, link))
		if as := must(c.AFPackets(ctx))(t); len(as) != 0 {
			t.Fatalf("af_packets after delete: %+v", as)
		}
		if _, found := must2(c.LookupInterface(ctx, idx))(t); found {
			t.Fatal("interface left after delete")
		}
	})
}

// A VPP without the plugins is accepted; only the optional operations fail,
// at once and naming the plugin.
func TestOptionalFeaturesMissing(t *testing.T) {
	check := func(t *testing.T, e *env) {
		ok(t, e.client.WaitConnected(e.ctx))
		for _, f := range vpp.Features {
			err := e.client.CheckFeature(e.ctx, f)
			var fe *vpp.FeatureError
			if !errors.Is(err, vpp.ErrUnsupported) || !errors.As(err, &fe) || !strings.Contains(err.Error(), "enable "+f.Plugin()) {
				t.Fatalf("%v: %v", f, err)
			}
		}
		_, err := e.client.CreateVXLANTunnel(e.ctx, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 1)
		if !errors.Is(err, vpp.ErrUnsupported) {
			t.Fatalf("create vxlan: %v", err)
		}
		_, err = e.client.CreateAFPacket(e.ctx, "eth0", nil)
		if !errors.Is(err, vpp.ErrUnsupported) {
			t.Fatalf("create af_packet: %v", err)
		}
		t.Log(err)
	}
	t.Run("vppsim", func(t *testing.T) {
		check(t, newEnv(t, vppsim.Options{Exclude: []string{"vxlan_add_del_tunnel_v3", "vxlan_tunnel_v2_dump", "af_packet_create_v3", "af_packet_delete", "af_packet_dump"}}))
	})
	t.Run("real VPP", func(t *testing.T) {
		v := realdp.StartVPP(t, realdp.VPPOptions{Name: "driver"})
		check(t, connect(t, shortTempDir(t), v.APISocket, nil, true))
	})
}

func TestTunnelInjectedFailure(t *testing.T) {
	e := newEnv(t, vppsim.Options{})
	ok(t, e.sim.FailNext("vxlan_add_del_tunnel_v3", 1, -1))
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	_, err := e.client.CreateVXLANTunnel(e.ctx, src, dst, 7)
	wantRetval(t, err, -1, nil)
	must(e.client.CreateVXLANTunnel(e.ctx, src, dst, 7))(t)
}

func must2[A, B any](a A, b B, err error) func(t *testing.T) (A, B) {
	return func(t *testing.T) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}
