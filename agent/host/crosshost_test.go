package host

import (
	"strings"
	"testing"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

func mustEncode(t *testing.T, o schema.Object) []byte {
	t.Helper()
	b, err := schema.Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// What a host derives from its intents and the memberships it sees: its
// own memberships (the intent's VNI, else the network's), one tunnel per
// peer with members of a local network, none to a host without local
// members in common, and an error instead of a tunnel to a peer whose VNI
// differs.
func TestCrossHostDerive(t *testing.T) {
	x, err := newCrossHost("h1", "192.0.2.1/24", "eth1")
	if err != nil {
		t.Fatal(err)
	}
	intent := func(ctr, network string, vni, bd uint32) bool {
		hi := &schema.HostInterface{Host: "h1", Container: ctr, Name: "net1", Type: schema.IfTypeMemif, NetType: schema.NetTypeBridge,
			Network: network, Bridge: bd, VNI: vni, Memif: &schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet, SocketPath: "/s/" + ctr}}
		return x.noteIntentLocked(schema.InterfaceKey("h1", ctr, "net1"), mustEncode(t, hi))
	}
	intent("c1", "red", 100, 4)
	intent("c2", "red", 100, 4)
	intent("c3", "blue", 0, 5)  // VNI from its Network object
	intent("c4", "green", 0, 6) // no VNI anywhere: stays on this host
	// Only a change of what memberships are made of asks for a recompute.
	if intent("c1", "red", 100, 4) {
		t.Error("the same intent again counts as a change")
	}
	if !intent("c1", "red", 100, 5) || !intent("c1", "red", 100, 4) {
		t.Error("a new bridge domain does not count as a change")
	}
	if x.noteIntentLocked(schema.InterfaceKey("h1", "c9", "net1"), nil) {
		t.Error("deleting an intent never seen counts as a change")
	}
	member := func(host, network string, vni uint32, underlay string, rev int64) {
		k := schema.MemberKey(host, network)
		x.members[k] = store.KV{Key: k, ModRevision: rev, Value: mustEncode(t, &schema.Member{Host: host, Network: network, VNI: vni, Underlay: underlay})}
	}
	member("h2", "red", 100, "192.0.2.2", 7)
	member("h3", "blue", 201, "192.0.2.3", 8) // disagrees on blue's VNI
	member("h4", "green", 300, "192.0.2.4", 9)
	member("h1", "red", 100, "192.0.2.1", 10) // its own: no tunnel to itself

	nets := x.localNets(func(n string) uint32 { return map[string]uint32{"blue": 200}[n] })
	if len(nets) != 2 || nets["red"] != (localNet{vni: 100, bridge: 4}) || nets["blue"] != (localNet{vni: 200, bridge: 5}) {
		t.Fatalf("local networks: %+v", nets)
	}
	own := x.ownMembers(nets)
	if len(own) != 2 || !strings.Contains(string(own[schema.MemberKey("h1", "blue")]), `"vni":200`) {
		t.Errorf("own memberships: %s", own)
	}
	d := x.derive(nets)
	if _, ok := d[schema.UplinkKey("h1")]; !ok || len(d) != 3 {
		t.Fatalf("derived keys: %v", keysOf(d))
	}
	red, err := schema.DecodeAs[schema.Tunnel](d[schema.TunnelKey("h1", "red", "h2")].Value)
	if err != nil || red.Src != "192.0.2.1" || red.Dst != "192.0.2.2" || red.VNI != 100 || red.Bridge != 4 || red.Error != "" ||
		d[schema.TunnelKey("h1", "red", "h2")].ModRevision != 7 {
		t.Errorf("tunnel to h2: %+v %v", red, err)
	}
	blue, err := schema.DecodeAs[schema.Tunnel](d[schema.TunnelKey("h1", "blue", "h3")].Value)
	if err != nil || !strings.Contains(blue.Error, "VNI 201") {
		t.Errorf("tunnel to h3 with another VNI: %+v %v", blue, err)
	}
	if _, err := derivedSpec("o", d[schema.TunnelKey("h1", "blue", "h3")].Value, nil); err == nil {
		t.Error("a tunnel whose peer disagrees on the VNI gets a spec")
	}

	// The diff hands over only what changed.
	if ups, dels := x.diff(d); len(ups) != 3 || len(dels) != 0 {
		t.Errorf("first diff: %d upserts %d deletes", len(ups), len(dels))
	}
	delete(x.members, schema.MemberKey("h2", "red"))
	if ups, dels := x.diff(x.derive(nets)); len(ups) != 0 || len(dels) != 1 || dels[0] != schema.TunnelKey("h1", "red", "h2") {
		t.Errorf("after h2 left: upserts %v deletes %v", ups, dels)
	}
}

func keysOf(m map[string]store.KV) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestCrossHostFlags(t *testing.T) {
	if x, err := newCrossHost("h", "", ""); x != nil || err != nil {
		t.Errorf("no flags: %v %v", x, err)
	}
	for _, bad := range [][2]string{{"192.0.2.1/24", ""}, {"", "eth1"}, {"192.0.2.1", "eth1"}, {"192.0.2.1/24", "../x"}} {
		if _, err := newCrossHost("h", bad[0], bad[1]); err == nil {
			t.Errorf("accepted --underlay-ip %q --uplink %q", bad[0], bad[1])
		}
	}
}
