package realdp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/integration/realdp"
)

var pingReceived = regexp.MustCompile(`(\d+) sent, (\d+) received`)

// TestVXLANBetweenRealVPPs proves the mechanism of issue 22 by hand: two
// VPPs, each in a network namespace of its own, joined by a veth pair
// whose ends are their af_packet uplinks; an L2 VXLAN tunnel between the
// uplinks' addresses in a bridge domain (split-horizon group 1) on each
// side, with a BVI loopback in it; VPP 1 pings VPP 2's BVI through the
// tunnel.
func TestVXLANBetweenRealVPPs(t *testing.T) {
	realdp.NeedVPP(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	sfx := hex.EncodeToString(b[:])
	type side struct {
		ns, link  string
		v         *realdp.VPP
		c         *vpp.Client
		underlay  netip.Prefix
		bvi       string
		afp, tunl uint32
	}
	sides := []*side{
		{link: "uxa" + sfx, underlay: netip.MustParsePrefix("192.168.77.1/24"), bvi: "10.77.0.1/24"},
		{link: "uxb" + sfx, underlay: netip.MustParsePrefix("192.168.77.2/24"), bvi: "10.77.0.2/24"},
	}
	for i, s := range sides {
		s.ns = realdp.Netns(t, "uvx"+strconv.Itoa(i)+sfx)
	}
	realdp.Run(t, "ip", "link", "add", sides[0].link, "type", "veth", "peer", "name", sides[1].link)
	for _, s := range sides {
		realdp.Run(t, "ip", "link", "set", s.link, "netns", s.ns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const bd, vni = 77, 4242
	for i, s := range sides {
		s.v = realdp.StartVPP(t, realdp.VPPOptions{Name: "vx" + strconv.Itoa(i), Netns: s.ns, Plugins: []string{"vxlan", "af_packet"}})
		s.c = vpp.Dial(vpp.Config{Socket: s.v.APISocket, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		t.Cleanup(func() { _ = s.c.Close() })
		if err := s.c.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		for _, f := range vpp.Features {
			if err := s.c.CheckFeature(ctx, f); err != nil {
				t.Fatalf("feature %v: %v", f, err)
			}
		}
	}
	for i, s := range sides {
		peer := sides[1-i]
		var err error
		if s.afp, err = s.c.CreateAFPacket(ctx, s.link, nil); err != nil {
			t.Fatal(err)
		}
		ok(t, s.c.SetAdminUp(ctx, s.afp, true))
		ok(t, s.c.AddAddress(ctx, s.afp, s.underlay))
		if _, err := s.c.CreateBridgeDomain(ctx, vpp.DefaultBridgeDomain(bd, "vxlan-test")); err != nil {
			t.Fatal(err)
		}
		if s.tunl, err = s.c.CreateVXLANTunnel(ctx, s.underlay.Addr(), peer.underlay.Addr(), vni); err != nil {
			t.Fatal(err)
		}
		ok(t, s.c.AddToBridge(ctx, s.tunl, bd, 1))
		ok(t, s.c.SetAdminUp(ctx, s.tunl, true))
		// Both loopbacks would be de:ad:00:00:00:00 (instance 0 each):
		// one MAC on both ends of the L2 network drops every frame.
		s.v.CLI(t, "create loopback interface mac 02:00:00:00:77:0"+strconv.Itoa(i+1))
		s.v.CLI(t, "set interface l2 bridge loop0 "+strconv.Itoa(bd)+" bvi")
		s.v.CLI(t, "set interface state loop0 up")
		s.v.CLI(t, "set interface ip address loop0 "+s.bvi)
	}
	for _, s := range sides {
		b, err := s.c.BridgeDomain(ctx, bd)
		ok(t, err)
		t.Logf("%s: bridge domain %d members %+v", s.link, bd, b.Members)
		t.Logf("%s: Linux side: %s", s.link, realdp.Run(t, "ip", "-n", strings.TrimPrefix(s.ns, "/var/run/netns/"), "-br", "link", "show", s.link))
	}
	// The first echo request waits for ARP of the underlay (VPP resolves
	// it by itself) and of the far BVI, and is lost; after it every one
	// must come back.
	warm := sides[0].v.CLI(t, "ping 10.77.0.2 source loop0 repeat 2 interval 0.2")
	out := sides[0].v.CLI(t, "ping 10.77.0.2 source loop0 repeat 5 interval 0.2")
	t.Logf("ping from VPP 1:\n%s\n%s", warm, out)
	m := pingReceived.FindStringSubmatch(out)
	if m == nil || m[2] != m[1] {
		for _, s := range sides {
			t.Logf("%s:\n%s\n%s\n%s", s.link, s.v.CLI(t, "show interface"), s.v.CLI(t, "show hardware-interfaces"), s.v.CLI(t, "show ip neighbors"))
		}
		t.Fatalf("no reply through the tunnel")
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
