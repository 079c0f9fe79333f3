package crosshost

import (
	"log/slog"
	"slices"
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

// mesh is a Mesh of host h1 (underlay 192.0.2.1/24, uplink eth1) whose
// networks' objects have the VNIs of netVNIs.
func mesh(t *testing.T, netVNIs map[string]uint32) *Mesh {
	t.Helper()
	x, err := New(Config{Host: "h1", Underlay: "192.0.2.1/24", Uplink: "eth1", Log: slog.New(slog.DiscardHandler),
		NetworkVNI: func(n string) uint32 { return netVNIs[n] }})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// intent records h1's interface intent of container ctr, created at
// revision rev, and says whether memberships changed.
func intent(t *testing.T, x *Mesh, ctr, network string, vni, bd uint32, rev int64) bool {
	t.Helper()
	hi := &schema.HostInterface{Host: "h1", Container: ctr, Name: "net1", Type: schema.IfTypeMemif, NetType: schema.NetTypeBridge,
		Network: network, Bridge: bd, VNI: vni, Memif: &schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet, SocketPath: "/s/" + ctr}}
	return x.noteIntentLocked(store.KV{Key: schema.InterfaceKey("h1", ctr, "net1"), Value: mustEncode(t, hi), CreateRevision: rev})
}

func member(t *testing.T, x *Mesh, host, network string, vni uint32, underlay string, rev int64) {
	t.Helper()
	k := schema.MemberKey(host, network)
	x.seen[k] = store.KV{Key: k, ModRevision: rev, CreateRevision: rev, Value: mustEncode(t, &schema.Member{Host: host, Network: network, VNI: vni, Underlay: underlay})}
}

// tunnel decodes the derived tunnel of network to peer.
func tunnel(t *testing.T, d map[string]store.KV, network, peer string) *schema.Tunnel {
	t.Helper()
	kv, ok := d[schema.TunnelKey("h1", network, peer)]
	if !ok {
		t.Fatalf("no tunnel of %s to %s among %v", network, peer, slices.Sorted(func(yield func(string) bool) {
			for k := range d {
				if !yield(k) {
					return
				}
			}
		}))
	}
	tu, err := schema.DecodeAs[schema.Tunnel](kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	return tu
}

// What a host derives from its intents and the memberships it sees: its
// own memberships (the intent's VNI, else the network's), one tunnel per
// peer with members of a local network, none to a host without local
// members in common, and an error instead of a tunnel to a peer whose VNI
// differs.
func TestCrossHostDerive(t *testing.T) {
	x := mesh(t, map[string]uint32{"blue": 200})
	intent(t, x, "c1", "red", 100, 4, 1)
	intent(t, x, "c2", "red", 100, 4, 2)
	intent(t, x, "c3", "blue", 0, 5, 3)  // VNI from its Network object
	intent(t, x, "c4", "green", 0, 6, 4) // no VNI anywhere: stays on this host
	// Only a change of what memberships are made of asks for a recompute.
	if intent(t, x, "c1", "red", 100, 4, 1) {
		t.Error("the same intent again counts as a change")
	}
	if !intent(t, x, "c1", "red", 100, 5, 1) || !intent(t, x, "c1", "red", 100, 4, 1) {
		t.Error("a new bridge domain does not count as a change")
	}
	if x.noteIntentLocked(store.KV{Key: schema.InterfaceKey("h1", "c9", "net1")}) {
		t.Error("deleting an intent never seen counts as a change")
	}
	member(t, x, "h2", "red", 100, "192.0.2.2", 7)
	member(t, x, "h3", "blue", 201, "192.0.2.3", 8) // disagrees on blue's VNI
	member(t, x, "h4", "green", 300, "192.0.2.4", 9)
	member(t, x, "h1", "red", 100, "192.0.2.1", 10) // its own: no tunnel to itself

	nets, refused := x.localNets()
	if len(nets) != 2 || len(refused) != 0 || nets["red"] != (localNet{vni: 100, bridge: 4, since: 1}) || nets["blue"] != (localNet{vni: 200, bridge: 5, since: 3}) {
		t.Fatalf("local networks: %+v refused %v", nets, refused)
	}
	own := x.ownMembers(nets)
	if len(own) != 2 || !strings.Contains(string(own[schema.MemberKey("h1", "blue")]), `"vni":200`) {
		t.Errorf("own memberships: %s", own)
	}
	d := x.derive(nets)
	if _, ok := d[schema.UplinkKey("h1")]; !ok || len(d) != 3 {
		t.Fatalf("derived keys: %d", len(d))
	}
	red := tunnel(t, d, "red", "h2")
	if red.Src != "192.0.2.1" || red.Dst != "192.0.2.2" || red.VNI != 100 || red.Bridge != 4 || red.Error != "" ||
		d[schema.TunnelKey("h1", "red", "h2")].ModRevision != 7 {
		t.Errorf("tunnel to h2: %+v", red)
	}
	if blue := tunnel(t, d, "blue", "h3"); !strings.Contains(blue.Error, "VNI 201") {
		t.Errorf("tunnel to h3 with another VNI: %+v", blue)
	}
	// A tunnel whose peer disagrees on the VNI is withdrawn: the one made
	// while they agreed must stop forwarding.
	blueKey, _ := schema.ParseKey(schema.TunnelKey("h1", "blue", "h3"))
	if _, err := x.Spec(blueKey, "o", d[blueKey.String()].Value); err == nil {
		t.Errorf("a tunnel whose peer disagrees on the VNI: %v", err)
	}

	// The diff hands over only what changed.
	if ups, dels := x.diff(d); len(ups) != 3 || len(dels) != 0 {
		t.Errorf("first diff: %d upserts %d deletes", len(ups), len(dels))
	}
	delete(x.seen, schema.MemberKey("h2", "red"))
	if ups, dels := x.diff(x.derive(nets)); len(ups) != 0 || len(dels) != 1 || dels[0] != schema.TunnelKey("h1", "red", "h2") {
		t.Errorf("after h2 left: upserts %v deletes %v", ups, dels)
	}
}

// A VNI is one network's on a host: of two local networks with one VNI the
// older keeps it whatever order they came in, the other is refused naming
// both, and neither shares the other's tunnels.
func TestCrossHostVNIOfOneNetwork(t *testing.T) {
	for _, order := range [][]string{{"red", "blue"}, {"blue", "red"}} {
		x := mesh(t, nil)
		revs := map[string]int64{"red": 5, "blue": 9} // red is older
		for i, n := range order {
			intent(t, x, "c"+n, n, 100, uint32(4+i), revs[n])
		}
		member(t, x, "h2", "red", 100, "192.0.2.2", 3)
		member(t, x, "h2", "blue", 100, "192.0.2.2", 4)
		nets, refused := x.localNets()
		if _, ok := nets["red"]; !ok || len(nets) != 1 {
			t.Fatalf("order %v: networks %v", order, nets)
		}
		why := refused["blue"]
		if !strings.Contains(why, "network blue") || !strings.Contains(why, "network red") || !strings.Contains(why, "VNI 100") {
			t.Errorf("order %v: refusal %q", order, why)
		}
		d := x.derive(nets)
		if _, ok := d[schema.TunnelKey("h1", "blue", "h2")]; ok || len(d) != 2 {
			t.Errorf("order %v: %d derived keys, blue's tunnel among them", order, len(d))
		}
		if own := x.ownMembers(nets); len(own) != 1 {
			t.Errorf("order %v: memberships published for a refused network: %d", order, len(own))
		}
	}
}

// Members are checked against their key and the underlay: a member whose
// host or network is not its key's, one announcing an address outside
// this host's underlay subnet or this host's own, and the younger of two
// hosts announcing one address get a tunnel status saying so and no
// tunnel; the older keeps its tunnel.
func TestCrossHostPeersChecked(t *testing.T) {
	x := mesh(t, nil)
	intent(t, x, "c1", "red", 100, 4, 1)
	member(t, x, "h2", "red", 100, "192.0.2.2", 10)
	member(t, x, "h3", "red", 100, "192.0.2.2", 11) // h2's address, announced later
	member(t, x, "h4", "red", 100, "198.51.100.4", 12)
	member(t, x, "h5", "red", 100, "192.0.2.1", 13) // this host's
	forged := schema.MemberKey("h6", "red")
	x.seen[forged] = store.KV{Key: forged, ModRevision: 14, CreateRevision: 14,
		Value: mustEncode(t, &schema.Member{Host: "h7", Network: "red", VNI: 100, Underlay: "192.0.2.7"})}
	nets, _ := x.localNets()
	d := x.derive(nets)
	if tu := tunnel(t, d, "red", "h2"); tu.Error != "" || tu.Dst != "192.0.2.2" {
		t.Errorf("h2, first with its address: %+v", tu)
	}
	for peer, want := range map[string]string{
		"h3": "which host h2 announced first",
		"h4": "outside this host's underlay subnet 192.0.2.0/24",
		"h5": "this host's own",
		"h6": `invalid host "h7": must be "h6"`,
	} {
		if tu := tunnel(t, d, "red", peer); !strings.Contains(tu.Error, want) || tu.Dst != "" {
			t.Errorf("%s: error %q, want %q (dst %q)", peer, tu.Error, want, tu.Dst)
		}
	}
	// The order the members were seen in changes nothing.
	delete(x.seen, schema.MemberKey("h2", "red"))
	member(t, x, "h2", "red", 100, "192.0.2.2", 10)
	if tu := tunnel(t, x.derive(nets), "red", "h3"); tu.Error == "" {
		t.Errorf("h3 got the address after h2 was seen again: %+v", tu)
	}
}

func TestCrossHostFlags(t *testing.T) {
	if x, err := New(Config{Host: "h"}); x != nil || err != nil {
		t.Errorf("no flags: %v %v", x, err)
	}
	for _, bad := range [][2]string{{"192.0.2.1/24", ""}, {"", "eth1"}, {"192.0.2.1", "eth1"}, {"192.0.2.1/24", "../x"}} {
		if _, err := New(Config{Host: "h", Underlay: bad[0], Uplink: bad[1], Log: slog.New(slog.DiscardHandler)}); err == nil {
			t.Errorf("accepted --underlay-ip %q --uplink %q", bad[0], bad[1])
		}
	}
}
