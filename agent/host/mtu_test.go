package host

import (
	"log/slog"
	"testing"

	"github.com/uspace-io/uspace/agent/reconcile/crosshost"
	"github.com/uspace-io/uspace/schema"
)

// The MTU of an interface on a network that spans hosts is the uplink's
// less the VXLAN overhead, or less when its intent or network asks for
// less; other interfaces keep what they ask for. The uplink here is lo,
// whose 65536 counts as the most VPP takes (schema.MaxMTU).
func TestSpanningMTU(t *testing.T) {
	x, err := crosshost.New(crosshost.Config{Host: "h1", Underlay: "192.0.2.1/24", Uplink: "lo", Log: slog.New(slog.DiscardHandler),
		NetworkVNI: func(string) uint32 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.ReadUplink(""); err != nil {
		t.Fatal(err)
	}
	overlay := uint32(schema.MaxMTU - 50)
	if x.OverlayMTU() != overlay {
		t.Fatalf("overlay MTU over lo: %d, want %d", x.OverlayMTU(), overlay)
	}
	a := &Agent{cross: x, networks: map[string]schema.Network{
		"blue":  {Name: "blue", Bridge: 5, VNI: 200},
		"small": {Name: "small", Bridge: 6, VNI: 300, MTU: 1400},
		"big":   {Name: "big", Bridge: 7, VNI: 400, MTU: schema.MaxMTU},
		"green": {Name: "green", Bridge: 8, MTU: 9000},
	}}
	k, err := schema.ParseKey(schema.InterfaceKey("h1", "c", "net1"))
	if err != nil {
		t.Fatal(err)
	}
	hi := func(network string, vni, mtu uint32, nt schema.NetType) []byte {
		v := &schema.HostInterface{Host: "h1", Container: "c", Name: "net1", Type: schema.IfTypeMemif, NetType: nt,
			Network: network, VNI: vni, MTU: mtu, Memif: &schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet, SocketPath: "/s/c"}}
		if nt == schema.NetTypeBridge {
			v.Bridge = 4
		}
		b, err := schema.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		what  string
		value []byte
		want  uint32
	}{
		{"the intent's VNI", hi("red", 100, 0, schema.NetTypeBridge), overlay},
		{"the network's VNI", hi("blue", 0, 0, schema.NetTypeBridge), overlay},
		{"an intent asking for less", hi("red", 100, 1300, schema.NetTypeBridge), 1300},
		{"an intent asking for more", hi("red", 100, schema.MaxMTU, schema.NetTypeBridge), overlay},
		{"a network asking for less", hi("small", 0, 0, schema.NetTypeBridge), 1400},
		{"a network asking for more", hi("big", 0, 0, schema.NetTypeBridge), overlay},
		{"a network on this host only", hi("green", 0, 0, schema.NetTypeBridge), 9000},
		{"no network settings, no VNI", hi("red", 0, 0, schema.NetTypeBridge), 0},
		{"not in the network's bridge domain", hi("blue", 0, 0, schema.NetTypeInterface), 0},
	} {
		spec, err := a.interfaceSpec(k, "o", c.value)
		if err != nil || spec.MTU != c.want {
			t.Errorf("%s: MTU %d (%v), want %d", c.what, spec.MTU, err, c.want)
		}
	}
	a.cross = nil
	if spec, _ := a.interfaceSpec(k, "o", hi("red", 100, 0, schema.NetTypeBridge)); spec.MTU != 0 {
		t.Errorf("a host that joins no network spanning hosts: MTU %d, want VPP's default", spec.MTU)
	}
}
