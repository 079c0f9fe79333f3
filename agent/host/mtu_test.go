package host

import (
	"strings"
	"testing"

	"github.com/uspace-io/uspace/schema"
)

// The MTU of an interface on a network that spans hosts is the uplink's
// less the VXLAN overhead, or less when its intent or network asks for
// less; other interfaces keep what they ask for; the uplink's own is its
// Linux interface's, up to what VPP takes.
func TestSpanningMTU(t *testing.T) {
	x, err := newCrossHost("h1", "192.0.2.1/24", "eth1")
	if err != nil {
		t.Fatal(err)
	}
	if err := x.setUplinkMTU(1500); err != nil || x.uplinkMTU != 1500 || x.overlayMTU != 1450 {
		t.Fatalf("uplink 1500: %d %d %v", x.uplinkMTU, x.overlayMTU, err)
	}
	a := &Agent{cross: x, networks: map[string]schema.Network{
		"blue":  {Name: "blue", Bridge: 5, VNI: 200},
		"small": {Name: "small", Bridge: 6, VNI: 300, MTU: 1400},
		"big":   {Name: "big", Bridge: 7, VNI: 400, MTU: 9000},
		"green": {Name: "green", Bridge: 8, MTU: 9000},
	}}
	hi := func(network string, vni, mtu uint32, nt schema.NetType) []byte {
		v := &schema.HostInterface{Host: "h1", Container: "c", Name: "net1", Type: schema.IfTypeMemif, NetType: nt,
			Network: network, VNI: vni, MTU: mtu, Memif: &schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet, SocketPath: "/s/c"}}
		if nt == schema.NetTypeBridge {
			v.Bridge = 4
		}
		return mustEncode(t, v)
	}
	for _, c := range []struct {
		what  string
		value []byte
		want  uint32
	}{
		{"the intent's VNI", hi("red", 100, 0, schema.NetTypeBridge), 1450},
		{"the network's VNI", hi("blue", 0, 0, schema.NetTypeBridge), 1450},
		{"an intent asking for less", hi("red", 100, 1300, schema.NetTypeBridge), 1300},
		{"an intent asking for more", hi("red", 100, 9000, schema.NetTypeBridge), 1450},
		{"a network asking for less", hi("small", 0, 0, schema.NetTypeBridge), 1400},
		{"a network asking for more", hi("big", 0, 0, schema.NetTypeBridge), 1450},
		{"a network on this host only", hi("green", 0, 0, schema.NetTypeBridge), 9000},
		{"no network settings, no VNI", hi("red", 0, 0, schema.NetTypeBridge), 0},
		{"not in the network's bridge domain", hi("blue", 0, 0, schema.NetTypeInterface), 0},
	} {
		spec, err := a.interfaceSpec("o", c.value)
		if err != nil || spec.MTU != c.want {
			t.Errorf("%s: MTU %d (%v), want %d", c.what, spec.MTU, err, c.want)
		}
	}
	a.cross = nil
	if spec, _ := a.interfaceSpec("o", hi("red", 100, 0, schema.NetTypeBridge)); spec.MTU != 0 {
		t.Errorf("a host that joins no network spanning hosts: MTU %d, want VPP's default", spec.MTU)
	}

	d := x.derive(nil)
	spec, err := derivedSpec("o", d[schema.UplinkKey("h1")].Value, nil)
	if err != nil || spec.MTU != 1500 {
		t.Errorf("uplink spec MTU %d (%v), want its Linux interface's", spec.MTU, err)
	}
	if err := x.setUplinkMTU(65536); err != nil || x.uplinkMTU != schema.MaxMTU || x.overlayMTU != schema.MaxMTU-50 {
		t.Errorf("uplink 65536 (a loopback): %d %d %v", x.uplinkMTU, x.overlayMTU, err)
	}
	if err := x.setUplinkMTU(100); err == nil || !strings.Contains(err.Error(), "--uplink eth1 has MTU 100") {
		t.Errorf("uplink 100: %v", err)
	}
	x6, err := newCrossHost("h1", "2001:db8::1/64", "eth1")
	if err != nil {
		t.Fatal(err)
	}
	if err := x6.setUplinkMTU(1500); err != nil || x6.overlayMTU != 1430 {
		t.Errorf("uplink 1500 under IPv6: %d %v", x6.overlayMTU, err)
	}
}

// An uplink the agent cannot see is a start-up error naming the flag and
// the namespace it looked in.
func TestReadUplinkMTU(t *testing.T) {
	mtu, err := readLinkMTU("lo", "")
	if err != nil || mtu == 0 {
		t.Errorf("lo: %d %v", mtu, err)
	}
	for _, c := range []struct{ name, netns, want string }{
		{"uspacenosuch0", "", "read the MTU of --uplink uspacenosuch0 in the agent's network namespace"},
		{"lo", "/nonexistent/netns", "in network namespace /nonexistent/netns"},
	} {
		if _, err := readLinkMTU(c.name, c.netns); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s in %q: %v", c.name, c.netns, err)
		}
	}
}
