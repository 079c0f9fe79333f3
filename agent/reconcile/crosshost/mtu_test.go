package crosshost

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/schema"
)

// The uplink in VPP gets its Linux interface's MTU, up to what VPP takes;
// a network that spans hosts carries that less the VXLAN overhead (IPv4
// or IPv6 underlay); an uplink too small for IP is a start-up error.
func TestUplinkMTU(t *testing.T) {
	x := mesh(t, nil)
	if err := x.setUplinkMTU(1500); err != nil || x.uplinkMTU != 1500 || x.OverlayMTU() != 1450 {
		t.Fatalf("uplink 1500: %d %d %v", x.uplinkMTU, x.OverlayMTU(), err)
	}
	k, err := schema.ParseKey(schema.UplinkKey("h1"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := x.Spec(k, "o", x.derive(nil)[schema.UplinkKey("h1")].Value)
	if err != nil || spec.MTU != 1500 {
		t.Errorf("uplink spec MTU %d (%v), want its Linux interface's", spec.MTU, err)
	}
	if err := x.setUplinkMTU(65536); err != nil || x.uplinkMTU != schema.MaxMTU || x.OverlayMTU() != schema.MaxMTU-50 {
		t.Errorf("uplink 65536 (a loopback): %d %d %v", x.uplinkMTU, x.OverlayMTU(), err)
	}
	if err := x.setUplinkMTU(100); err == nil || !strings.Contains(err.Error(), "--uplink eth1 has MTU 100") {
		t.Errorf("uplink 100: %v", err)
	}
	x6, err := New(Config{Host: "h1", Underlay: "2001:db8::1/64", Uplink: "eth1", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := x6.setUplinkMTU(1500); err != nil || x6.OverlayMTU() != 1430 {
		t.Errorf("uplink 1500 under IPv6: %d %v", x6.OverlayMTU(), err)
	}
}

// An uplink the agent cannot see is a start-up error naming the flag and
// the namespace it looked in.
func TestReadUplink(t *testing.T) {
	mtu, _, err := readLink("lo", "")
	if err != nil || mtu == 0 {
		t.Errorf("lo: %d %v", mtu, err)
	}
	for _, c := range []struct{ name, netns, want string }{
		{"uspacenosuch0", "", "read the MTU and MAC of --uplink uspacenosuch0 in the agent's network namespace"},
		{"lo", "/nonexistent/netns", "in network namespace /nonexistent/netns"},
	} {
		if _, _, err := readLink(c.name, c.netns); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s in %q: %v", c.name, c.netns, err)
		}
	}
}
