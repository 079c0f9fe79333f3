package vpp_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/integration/vppsim"
)

func TestConnectedEventAndVersion(t *testing.T) {
	e := newEnv(t, vppsim.Options{Version: "25.02-test"})
	ev := waitEvent(t, e.client, vpp.EventConnected, 5*time.Second)
	if ev.Version.Version != "25.02-test" || ev.PID != e.sim.Snapshot().VpePID || ev.Generation != 1 || ev.Restarted {
		t.Fatalf("connected event = %+v", ev)
	}
	v := must(e.client.ShowVersion(e.ctx))(t)
	if v.Version != "25.02-test" || v.Program != "vpe" {
		t.Fatalf("version = %+v", v)
	}
	if cv, ok := e.client.ConnectedVersion(); !ok || cv != v {
		t.Fatalf("version at connect = %+v (%v), show_version = %+v", cv, ok, v)
	}
	pid := must(e.client.Ping(e.ctx))(t)
	if pid != ev.PID {
		t.Fatalf("ping pid %d, event pid %d", pid, ev.PID)
	}
}

func TestMemifLifecycle(t *testing.T) {
	e := newEnv(t, vppsim.Options{})
	c, ctx := e.client, e.ctx
	sock := e.path("shared", "memif-abc-eth0.sock")

	id := must(c.EnsureMemifSocket(ctx, sock))(t)
	if id == 0 {
		t.Fatal("socket id 0 is VPP's default")
	}
	if again := must(c.EnsureMemifSocket(ctx, sock))(t); again != id {
		t.Fatalf("EnsureMemifSocket not idempotent: %d then %d", id, again)
	}
	socks := must(c.MemifSockets(ctx))(t)
	if !slices.Contains(socks, vpp.MemifSocket{ID: id, Filename: sock}) || len(socks) != 2 {
		t.Fatalf("memif sockets = %+v", socks)
	}
	if _, err := c.EnsureMemifSocket(ctx, "relative.sock"); !errors.Is(err, vpp.ErrInvalid) {
		t.Fatalf("relative socket path: %v", err)
	}
	// VPP 25.02 accepts a socket filename in a missing directory; the
	// master memif on it fails then.
	var err error
	nodir := must(c.EnsureMemifSocket(ctx, e.dir+"/nodir/x.sock"))(t)
	if _, err := c.CreateMemif(ctx, vpp.MemifSpec{Owner: "nodir", SocketID: nodir, Role: vpp.MemifMaster}); err == nil {
		t.Fatal("a master memif on a socket in a missing directory was created")
	}
	ok(t, c.DeleteMemifSocket(ctx, nodir))

	spec := vpp.MemifSpec{Owner: "c1/eth0", SocketID: id, ID: 0, Role: vpp.MemifMaster, Mode: vpp.MemifEthernet, RingSize: 2048}
	m := must(c.CreateMemif(ctx, spec))(t)
	if m.SwIfIndex == 0 || m.Name != "memif"+uitoa(id)+"/0" || m.Tag != "uspace:c1/eth0" || len(m.MAC) != 6 {
		t.Fatalf("created memif = %+v", m)
	}
	if owner, ok := m.Owner(); !ok || owner != "c1/eth0" {
		t.Fatalf("owner = %q %t", owner, ok)
	}
	if !isSocket(sock) {
		t.Fatalf("master memif did not create its socket %s", sock)
	}
	// idempotent repeat returns the same interface, no second one
	again := must(c.CreateMemif(ctx, spec))(t)
	if again.SwIfIndex != m.SwIfIndex {
		t.Fatalf("repeat create: %d, want %d", again.SwIfIndex, m.SwIfIndex)
	}
	if n := len(e.sim.Snapshot().Memifs); n != 1 {
		t.Fatalf("sim has %d memifs after repeated create", n)
	}
	// the same id with another owner, or another role, is a conflict
	other := spec
	other.Owner = "c2/eth0"
	_, err = c.CreateMemif(ctx, other)
	wantRetval(t, err, -68, vpp.ErrConflict)
	slave := spec
	slave.Role = vpp.MemifSlave
	slave.ID = 5
	_, err = c.CreateMemif(ctx, slave)
	wantRetval(t, err, -68, vpp.ErrConflict)
	if !strings.Contains(err.Error(), "other role") {
		t.Fatalf("role conflict message: %v", err)
	}
	// unknown socket id
	bad := spec
	bad.SocketID = 4242
	_, err = c.CreateMemif(ctx, bad)
	wantRetval(t, err, -73, vpp.ErrInvalid)
	if !strings.Contains(err.Error(), "create memif socket 4242 id 0") {
		t.Fatalf("error does not name the object: %v", err)
	}
	// invalid specs never reach VPP
	for _, s := range []vpp.MemifSpec{{SocketID: id}, {Owner: strings.Repeat("x", 60)}, {Owner: "o", RingSize: 1000}, {Owner: "has space"}} {
		if _, err := c.CreateMemif(ctx, s); !errors.Is(err, vpp.ErrInvalid) {
			t.Fatalf("spec %+v: %v", s, err)
		}
	}

	list := must(c.Memifs(ctx))(t)
	if len(list) != 1 || list[0].SwIfIndex != m.SwIfIndex || list[0].Tag != m.Tag || list[0].Role != vpp.MemifMaster || list[0].SocketID != id {
		t.Fatalf("memifs = %+v", list)
	}

	// the socket in use cannot go
	wantRetval(t, c.DeleteMemifSocket(ctx, id), -74, vpp.ErrConflict)

	ok(t, c.DeleteMemif(ctx, m.SwIfIndex))
	if !exists(sock) {
		t.Fatal("socket file gone with the last master: VPP 25.02 leaves it (vppstate removes it)")
	}
	ok(t, c.DeleteMemif(ctx, m.SwIfIndex)) // already gone
	if list := must(c.Memifs(ctx))(t); len(list) != 0 {
		t.Fatalf("memifs after delete = %+v", list)
	}
	ok(t, c.DeleteMemifSocket(ctx, id))
	ok(t, c.DeleteMemifSocket(ctx, id)) // already gone
	if socks := must(c.MemifSockets(ctx))(t); len(socks) != 1 {
		t.Fatalf("sockets after delete = %+v", socks)
	}
	if err := c.DeleteMemifSocket(ctx, 0); !errors.Is(err, vpp.ErrInvalid) {
		t.Fatalf("delete default socket: %v", err)
	}
}

func uitoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func setFlags(swIfIndex uint32, up bool) api.Message {
	req := &interfaces.SwInterfaceSetFlags{SwIfIndex: interface_types.InterfaceIndex(swIfIndex)}
	if up {
		req.Flags = interface_types.IF_STATUS_API_FLAG_ADMIN_UP
	}
	return req
}

func TestMemifAdoptsUntaggedAndRejectsForeign(t *testing.T) {
	onBoth(t, func(t *testing.T, e *env) {
		c, ctx := e.client, e.ctx
		sock := e.path("s", "a.sock")
		id := must(c.EnsureMemifSocket(ctx, sock))(t)
		spec := vpp.MemifSpec{Owner: "me", SocketID: id, ID: 1, Role: vpp.MemifSlave}
		m := must(c.CreateMemif(ctx, spec))(t)
		// simulate a crash between create and tag
		ok(t, c.ClearOwner(ctx, m.SwIfIndex))
		adopted := must(c.CreateMemif(ctx, spec))(t)
		if adopted.SwIfIndex != m.SwIfIndex || adopted.Tag != "uspace:me" {
			t.Fatalf("adopted = %+v", adopted)
		}
		if i := must(c.Interface(ctx, m.SwIfIndex))(t); i.Tag != "uspace:me" {
			t.Fatalf("tag after adoption = %q", i.Tag)
		}
		// a foreign tag is never taken over
		ok(t, c.SetOwner(ctx, m.SwIfIndex, "someone-else"))
		_, err := c.CreateMemif(ctx, spec)
		wantRetval(t, err, -68, vpp.ErrConflict)
		if i := must(c.Interface(ctx, m.SwIfIndex))(t); i.Tag != "uspace:someone-else" {
			t.Fatalf("foreign tag modified: %q", i.Tag)
		}
		// a slave does not create a socket file
		if exists(sock) {
			t.Fatal("slave memif created a socket file")
		}
		// deleting a non-memif by index is refused
		v := must(c.CreateVhostUser(ctx, vpp.VhostUserSpec{Owner: "me", SocketPath: e.path("s", "v.sock")}))(t)
		err = c.DeleteMemif(ctx, v.SwIfIndex)
		wantRetval(t, err, -2, vpp.ErrConflict)
		if i := must(c.Interface(ctx, v.SwIfIndex))(t); i.SwIfIndex != v.SwIfIndex {
			t.Fatal("vhost interface vanished")
		}
	})
}

func TestVhostUserLifecycle(t *testing.T) {
	e := newEnv(t, vppsim.Options{})
	c, ctx := e.client, e.ctx
	path := e.path("vhost", "sock0")
	mac, _ := net.ParseMAC("02:00:00:aa:bb:cc")
	spec := vpp.VhostUserSpec{Owner: "vol1", SocketPath: path, Server: true, MAC: mac}
	v := must(c.CreateVhostUser(ctx, spec))(t)
	if v.Name != "VirtualEthernet0/0/0" || !v.Server || v.SocketPath != path || v.Tag != "uspace:vol1" || v.MAC.String() != mac.String() {
		t.Fatalf("vhost = %+v", v)
	}
	if !isSocket(path) {
		t.Fatal("server-mode vhost-user did not create its socket")
	}
	again := must(c.CreateVhostUser(ctx, spec))(t)
	if again.SwIfIndex != v.SwIfIndex || len(e.sim.Snapshot().VhostUsers) != 1 {
		t.Fatalf("repeat create returned %+v", again)
	}
	// same path, client mode: conflict carrying VPP's -79
	client := spec
	client.Server = false
	_, err := c.CreateVhostUser(ctx, client)
	wantRetval(t, err, -79, vpp.ErrConflict)
	// same path, other owner
	foreign := spec
	foreign.Owner = "vol2"
	_, err = c.CreateVhostUser(ctx, foreign)
	wantRetval(t, err, -79, vpp.ErrConflict)

	cpath := e.path("vhost", "client0")
	cv := must(c.CreateVhostUser(ctx, vpp.VhostUserSpec{Owner: "vol3", SocketPath: cpath}))(t)
	if cv.Server || exists(cpath) || cv.Name != "VirtualEthernet0/0/1" {
		t.Fatalf("client-mode vhost = %+v (socket exists: %t)", cv, exists(cpath))
	}
	all := must(c.VhostUsers(ctx))(t)
	if len(all) != 2 || all[1].SockErrno == 0 || all[0].Tag != "uspace:vol1" {
		t.Fatalf("vhost users = %+v", all)
	}
	ok(t, c.DeleteVhostUser(ctx, v.SwIfIndex))
	if exists(path) {
		t.Fatal("vhost server socket not removed on delete")
	}
	ok(t, c.DeleteVhostUser(ctx, v.SwIfIndex))
	ok(t, c.DeleteVhostUser(ctx, cv.SwIfIndex))
	if all := must(c.VhostUsers(ctx))(t); len(all) != 0 {
		t.Fatalf("vhost users after delete = %+v", all)
	}
	if _, err := c.CreateVhostUser(ctx, vpp.VhostUserSpec{Owner: "x", SocketPath: "/" + strings.Repeat("a", 120)}); !errors.Is(err, vpp.ErrInvalid) {
		t.Fatalf("long socket path: %v", err)
	}
}

func TestBridgeDomains(t *testing.T) {
	onBoth(t, func(t *testing.T, e *env) {
		c, ctx := e.client, e.ctx
		spec := vpp.DefaultBridgeDomain(7, "net-a")
		b := must(c.CreateBridgeDomain(ctx, spec))(t)
		if b.ID != 7 || !b.Learn || !b.Flood || b.ArpTerm || b.Tag != "uspace:net-a" {
			t.Fatalf("bd = %+v", b)
		}
		must(c.CreateBridgeDomain(ctx, spec))(t) // idempotent
		changed := spec
		changed.ArpTerm = true
		_, err := c.CreateBridgeDomain(ctx, changed)
		wantRetval(t, err, -119, vpp.ErrConflict)
		foreign := spec
		foreign.Owner = "net-b"
		existing, err := c.CreateBridgeDomain(ctx, foreign)
		wantRetval(t, err, -119, vpp.ErrConflict)
		if existing.Tag != "uspace:net-a" {
			t.Fatalf("conflict should return the existing domain, got %+v", existing)
		}

		sock := e.path("m", "a.sock")
		id := must(c.EnsureMemifSocket(ctx, sock))(t)
		m1 := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "c/1", SocketID: id, ID: 1}))(t)
		m2 := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "c/2", SocketID: id, ID: 2}))(t)
		ok(t, c.AddToBridge(ctx, m1.SwIfIndex, 7, 0))
		ok(t, c.AddToBridge(ctx, m1.SwIfIndex, 7, 0))      // idempotent
		ok(t, c.AddToKnownBridge(ctx, m2.SwIfIndex, 7, 2)) // no existence check
		b = must(c.BridgeDomain(ctx, 7))(t)
		if !slices.Equal(b.Members, []vpp.BridgeMember{{SwIfIndex: m1.SwIfIndex}, {SwIfIndex: m2.SwIfIndex, SHG: 2}}) {
			t.Fatalf("members = %+v", b.Members)
		}
		// missing bridge domain: refused, and VPP did not auto-create it
		err = c.AddToBridge(ctx, m1.SwIfIndex, 99, 0)
		if !errors.Is(err, vpp.ErrNotFound) {
			t.Fatalf("attach to missing bd: %v", err)
		}
		if _, err := c.BridgeDomain(ctx, 99); !errors.Is(err, vpp.ErrNotFound) {
			t.Fatalf("bd 99 exists after refused attach: %v", err)
		}
		// unknown interface
		wantRetval(t, c.AddToBridge(ctx, 4242, 7, 0), -2, vpp.ErrNotFound)
		// in use
		wantRetval(t, c.DeleteBridgeDomain(ctx, 7), -120, vpp.ErrConflict)

		ok(t, c.RemoveFromBridge(ctx, m1.SwIfIndex))
		ok(t, c.RemoveFromBridge(ctx, m1.SwIfIndex)) // not in a bd any more
		ok(t, c.RemoveFromBridge(ctx, 4242))         // gone
		ok(t, c.DeleteMemif(ctx, m2.SwIfIndex))      // leaves the bd with it
		if b := must(c.BridgeDomain(ctx, 7))(t); len(b.Members) != 0 {
			t.Fatalf("members after removal = %+v", b.Members)
		}
		ok(t, c.DeleteBridgeDomain(ctx, 7))
		ok(t, c.DeleteBridgeDomain(ctx, 7)) // already gone
		if bds := must(c.BridgeDomains(ctx))(t); len(bds) != 0 {
			t.Fatalf("bds = %+v", bds)
		}
		if _, err := c.CreateBridgeDomain(ctx, vpp.DefaultBridgeDomain(0, "x")); !errors.Is(err, vpp.ErrInvalid) {
			t.Fatalf("bd 0: %v", err)
		}
	})
}

func TestInterfaceSettings(t *testing.T) {
	onBoth(t, func(t *testing.T, e *env) {
		c, ctx := e.client, e.ctx
		m := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "c/eth0", Role: vpp.MemifSlave}))(t) // default socket 0
		ok(t, c.SetAdminUp(ctx, m.SwIfIndex, true))
		ok(t, c.SetMTU(ctx, m.SwIfIndex, 1450))
		mac, _ := net.ParseMAC("02:11:22:33:44:55")
		ok(t, c.SetMAC(ctx, m.SwIfIndex, mac))
		a4 := netip.MustParsePrefix("10.56.217.131/24")
		a6 := netip.MustParsePrefix("fd00::5/64")
		ok(t, c.AddAddress(ctx, m.SwIfIndex, a4))
		ok(t, c.AddAddress(ctx, m.SwIfIndex, a4)) // idempotent despite VPP's -105
		ok(t, c.AddAddress(ctx, m.SwIfIndex, a6))
		i := must(c.Interface(ctx, m.SwIfIndex))(t)
		if !i.AdminUp || i.MTU != 1450 || i.MAC.String() != mac.String() || !slices.Equal(i.Addresses, []netip.Prefix{a4, a6}) || i.DevType != "memif" {
			t.Fatalf("interface = %+v", i)
		}
		// an overlapping address on another interface is a real conflict
		m2 := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "c/eth1", Role: vpp.MemifSlave, ID: 1}))(t)
		wantRetval(t, c.AddAddress(ctx, m2.SwIfIndex, netip.MustParsePrefix("10.56.217.7/24")), -105, vpp.ErrConflict)

		ok(t, c.DeleteAddress(ctx, m.SwIfIndex, a4))
		ok(t, c.DeleteAddress(ctx, m.SwIfIndex, a4)) // already gone
		if got := must(c.InterfaceAddresses(ctx, m.SwIfIndex))(t); !slices.Equal(got, []netip.Prefix{a6}) {
			t.Fatalf("addresses = %v", got)
		}
		ok(t, c.SetAdminUp(ctx, m.SwIfIndex, false))
		if i := must(c.Interface(ctx, m.SwIfIndex))(t); i.AdminUp {
			t.Fatal("still up")
		}

		// unknown sw_if_index: every setter surfaces -2 and names the object
		for name, err := range map[string]error{
			"up":   c.SetAdminUp(ctx, 4242, true),
			"mtu":  c.SetMTU(ctx, 4242, 1500),
			"mac":  c.SetMAC(ctx, 4242, mac),
			"addr": c.AddAddress(ctx, 4242, a4),
			"tag":  c.SetOwner(ctx, 4242, "x"),
		} {
			wantRetval(t, err, -2, vpp.ErrNotFound)
			if !strings.Contains(err.Error(), "sw_if_index 4242") {
				t.Fatalf("%s: error does not name the interface: %v", name, err)
			}
		}
		if _, err := c.Interface(ctx, 4242); !errors.Is(err, vpp.ErrNotFound) {
			t.Fatalf("Interface(4242): %v", err)
		}
		ok(t, c.DeleteAddress(ctx, 4242, a4))
		ok(t, c.ClearOwner(ctx, 4242))

		all := must(c.Interfaces(ctx))(t)
		if len(all) != 3 || all[0].Name != "local0" || all[1].Tag != "uspace:c/eth0" {
			t.Fatalf("interfaces = %+v", all)
		}
	})
}

func TestRoutes(t *testing.T) {
	onBoth(t, func(t *testing.T, e *env) {
		c, ctx := e.client, e.ctx
		m := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "c/eth0", Role: vpp.MemifSlave}))(t)
		ok(t, c.AddAddress(ctx, m.SwIfIndex, netip.MustParsePrefix("10.1.0.2/24")))
		ok(t, c.SetAdminUp(ctx, m.SwIfIndex, true)) // VPP routes an address only while its interface is up
		def := vpp.Route{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Paths: []vpp.RoutePath{{Gateway: netip.MustParseAddr("10.1.0.1"), SwIfIndex: m.SwIfIndex}}}
		ok(t, c.AddRoute(ctx, def))
		ok(t, c.AddRoute(ctx, def)) // repeat is harmless
		v6 := vpp.Route{Prefix: netip.MustParsePrefix("fd00:1::/48"), Paths: []vpp.RoutePath{{Gateway: netip.MustParseAddr("fd00::1")}}}
		ok(t, c.AddRoute(ctx, v6))
		find := func(rs []vpp.Route, p string) *vpp.Route {
			for i := range rs {
				if rs[i].Prefix.String() == p {
					return &rs[i]
				}
			}
			return nil
		}
		rs := must(c.Routes(ctx, 0, false))(t)
		r := find(rs, "0.0.0.0/0")
		if r == nil || len(r.Paths) != 1 || r.Paths[0].Gateway.String() != "10.1.0.1" || r.Paths[0].SwIfIndex != m.SwIfIndex || r.Paths[0].Kind != vpp.PathNormal {
			t.Fatalf("default route = %+v", r)
		}
		if r := find(rs, "10.1.0.2/32"); r == nil || r.Paths[0].Kind != vpp.PathLocal {
			t.Fatalf("local route of the address = %+v", r)
		}
		if r := find(must(c.Routes(ctx, 0, true))(t), "fd00:1::/48"); r == nil || r.Paths[0].SwIfIndex != vpp.NoInterface {
			t.Fatalf("v6 route = %+v", r)
		}
		wantRetval(t, c.AddRoute(ctx, vpp.Route{Table: 9, Prefix: def.Prefix, Paths: def.Paths}), -3, vpp.ErrNotFound)
		wantRetval(t, c.AddRoute(ctx, vpp.Route{Prefix: netip.MustParsePrefix("10.9.0.0/16"), Paths: []vpp.RoutePath{{SwIfIndex: 4242}}}), -54, vpp.ErrNotFound)
		if err := c.AddRoute(ctx, vpp.Route{Prefix: def.Prefix, Paths: []vpp.RoutePath{{Gateway: netip.MustParseAddr("fd00::1")}}}); !errors.Is(err, vpp.ErrInvalid) {
			t.Fatalf("family mismatch: %v", err)
		}
		ok(t, c.DeleteRoute(ctx, v6))
		ok(t, c.DeleteRoute(ctx, v6))
		if r := find(must(c.Routes(ctx, 0, true))(t), "fd00:1::/48"); r != nil {
			t.Fatalf("route survived delete: %+v", r)
		}
		// A second interface asking for the same prefix adds its path;
		// deleting either's path leaves the other's.
		m2 := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "c/net1", Role: vpp.MemifSlave, ID: 1}))(t)
		def2 := vpp.Route{Prefix: def.Prefix, Paths: []vpp.RoutePath{{Gateway: netip.MustParseAddr("10.2.0.1"), SwIfIndex: m2.SwIfIndex}}}
		ok(t, c.AddRoute(ctx, def2))
		if r := find(must(c.Routes(ctx, 0, false))(t), "0.0.0.0/0"); r == nil || len(r.Paths) != 2 {
			t.Fatalf("default route of two interfaces = %+v, want both paths", r)
		}
		ok(t, c.DeleteRoute(ctx, def))
		if r := find(must(c.Routes(ctx, 0, false))(t), "0.0.0.0/0"); r == nil || len(r.Paths) != 1 || r.Paths[0].SwIfIndex != m2.SwIfIndex {
			t.Fatalf("default route after one interface's path went = %+v, want the other's path", r)
		}
		ok(t, c.DeleteRoute(ctx, def2))
		if r := find(must(c.Routes(ctx, 0, false))(t), "0.0.0.0/0"); r == nil || r.Paths[0].Kind != vpp.PathDrop {
			t.Fatalf("default route after both paths went = %+v, want VPP's own drop route", r)
		}
	})
}

func TestInjectedFailuresAndTimeouts(t *testing.T) {
	e := newEnv(t, vppsim.Options{})
	c, ctx := e.client, e.ctx
	ok(t, e.sim.FailNext("memif_create_v2", 1, -1))
	_, err := c.CreateMemif(ctx, vpp.MemifSpec{Owner: "x", Role: vpp.MemifSlave})
	wantRetval(t, err, -1, nil)
	if errors.Is(err, vpp.ErrConflict) || errors.Is(err, vpp.ErrNotFound) {
		t.Fatalf("unspecified error must not look like a known kind: %v", err)
	}
	// the failure was used up: the next create works
	m := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "x", Role: vpp.MemifSlave}))(t)

	// a failing tag rolls the fresh memif back: nothing untagged remains
	ok(t, e.sim.FailNext("sw_interface_tag_add_del", 1, -7))
	_, err = c.CreateMemif(ctx, vpp.MemifSpec{Owner: "y", Role: vpp.MemifSlave, ID: 9})
	wantRetval(t, err, -7, nil)
	for _, mm := range must(c.Memifs(ctx))(t) {
		if mm.ID == 9 {
			t.Fatalf("memif left behind after failed tagging: %+v", mm)
		}
	}

	ok(t, e.sim.FailNext("bridge_domain_add_del", 1, -119))
	_, err = c.CreateBridgeDomain(ctx, vpp.DefaultBridgeDomain(3, "n"))
	// -119 claims existence but the domain is not there: not silently OK
	if !errors.Is(err, vpp.ErrNotFound) {
		t.Fatalf("fake -119: %v", err)
	}

	// latency beyond the caller's deadline surfaces as a deadline error
	ok(t, e.sim.SetLatency("sw_interface_set_flags", 600*time.Millisecond))
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = c.SetAdminUp(short, m.SwIfIndex, true)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "set admin up") {
		t.Fatalf("slow VPP: %v", err)
	}
	e.sim.ClearFaults()
	ok(t, c.SetAdminUp(ctx, m.SwIfIndex, true))
}

func TestReconnectAfterRestart(t *testing.T) {
	e := newEnv(t, vppsim.Options{})
	c, ctx := e.client, e.ctx
	first := waitEvent(t, c, vpp.EventConnected, 5*time.Second)
	sock := e.path("s", "m.sock")
	id := must(c.EnsureMemifSocket(ctx, sock))(t)
	spec := vpp.MemifSpec{Owner: "c/eth0", SocketID: id, ID: 0, Role: vpp.MemifMaster}
	m := must(c.CreateMemif(ctx, spec))(t)
	ok(t, c.AddAddress(ctx, m.SwIfIndex, netip.MustParsePrefix("10.0.0.1/24")))

	ok(t, e.sim.Restart())
	down := waitEvent(t, c, vpp.EventDisconnected, 10*time.Second)
	if down.Generation != first.Generation || down.Err == nil {
		t.Fatalf("disconnected event = %+v", down)
	}
	up := waitEvent(t, c, vpp.EventConnected, 15*time.Second)
	if !up.Restarted || up.PID == first.PID || up.Generation != first.Generation+1 {
		t.Fatalf("reconnected event = %+v (first %+v)", up, first)
	}
	if c.Generation() != up.Generation {
		t.Fatalf("Generation() = %d", c.Generation())
	}
	// the dataplane lost everything; the stale socket file is still there
	if ms := must(c.Memifs(ctx))(t); len(ms) != 0 {
		t.Fatalf("memifs after restart = %+v", ms)
	}
	if !exists(sock) {
		t.Fatal("a crashed VPP leaves its memif socket file behind")
	}
	// re-applying works, over the stale socket file
	id2 := must(c.EnsureMemifSocket(ctx, sock))(t)
	spec.SocketID = id2
	m2 := must(c.CreateMemif(ctx, spec))(t)
	if !isSocket(sock) || m2.Tag != "uspace:c/eth0" {
		t.Fatalf("re-created memif %+v, socket ok %t", m2, isSocket(sock))
	}

	// a dropped connection (no restart) reconnects with Restarted=false
	e.sim.DropConnections()
	waitEvent(t, c, vpp.EventDisconnected, 10*time.Second)
	again := waitEvent(t, c, vpp.EventConnected, 15*time.Second)
	if again.Restarted || again.PID != up.PID {
		t.Fatalf("after a dropped connection: %+v", again)
	}
	if ms := must(c.Memifs(ctx))(t); len(ms) != 1 {
		t.Fatalf("state lost without a restart: %+v", ms)
	}
}

func TestNotConnectedThenVPPAppears(t *testing.T) {
	dir := shortTempDir(t)
	sockPath := dir + "/api.sock"
	c := vpp.Dial(vpp.Config{Socket: sockPath, Logger: quietLogger()})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Memifs(ctx)
	if !errors.Is(err, vpp.ErrNotConnected) || !strings.Contains(err.Error(), "dump memifs") {
		t.Fatalf("without VPP: %v", err)
	}
	if c.Connected() {
		t.Fatal("Connected() without VPP")
	}
	sim, err := vppsim.Start(vppsim.Options{Socket: sockPath, RuntimeDir: dir + "/run"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	must(c.Memifs(ctx))(t)
}

func TestIncompatibleVPP(t *testing.T) {
	e := newEnv(t, vppsim.Options{Exclude: []string{"memif_create_v2", "bridge_domain_dump"}, Version: "19.08-old"})
	ev := waitEvent(t, e.client, vpp.EventIncompatible, 10*time.Second)
	var ie *vpp.IncompatibleError
	if !errors.As(ev.Err, &ie) {
		t.Fatalf("event error = %v", ev.Err)
	}
	if ie.Version != "19.08-old" || !slices.Contains(ie.Incompatible, "memif_create_v2_8c7de5f7") || !slices.Contains(ie.Incompatible, "bridge_domain_dump_74396a43") || len(ie.Incompatible) != 2 {
		t.Fatalf("incompatible = %+v", ie)
	}
	if !strings.Contains(ie.Error(), "19.08-old") {
		t.Fatalf("message lacks the version: %v", ie)
	}
	_, err := e.client.Memifs(e.ctx)
	if !errors.As(err, &ie) {
		t.Fatalf("operation on incompatible VPP: %v", err)
	}
	wctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	if err := e.client.WaitConnected(wctx); !errors.As(err, &ie) {
		t.Fatalf("WaitConnected: %v", err)
	}
}

func TestPipelineAndCreateMemifs(t *testing.T) {
	e := newEnv(t, vppsim.Options{})
	c, ctx := e.client, e.ctx
	id := must(c.EnsureMemifSocket(ctx, e.path("p", "m.sock")))(t)
	const n = 600 // more than two pipeline windows
	specs := make([]vpp.MemifSpec, n)
	for i := range specs {
		specs[i] = vpp.MemifSpec{Owner: "c/" + uitoa(uint32(i)), SocketID: id, ID: uint32(i), Role: vpp.MemifMaster}
	}
	// one already exists and is ours: adopted path
	pre := must(c.CreateMemif(ctx, specs[17]))(t)
	before := e.sim.MessageCount("memif_create_v2")
	out, err := c.CreateMemifs(ctx, specs)
	ok(t, err)
	if got := e.sim.MessageCount("memif_create_v2") - before; got != n+1 {
		t.Fatalf("memif_create_v2 calls = %d, want %d (n + one retry)", got, n+1)
	}
	seen := map[uint32]bool{}
	for i, m := range out {
		if m.ID != uint32(i) || m.Tag != "uspace:c/"+uitoa(uint32(i)) || seen[m.SwIfIndex] {
			t.Fatalf("item %d = %+v", i, m)
		}
		seen[m.SwIfIndex] = true
	}
	if out[17].SwIfIndex != pre.SwIfIndex {
		t.Fatalf("existing memif not reused: %d vs %d", out[17].SwIfIndex, pre.SwIfIndex)
	}
	list := must(c.Memifs(ctx))(t)
	if len(list) != n {
		t.Fatalf("%d memifs in VPP, want %d", len(list), n)
	}
	for _, m := range list {
		if owner, ok := m.Owner(); !ok || owner != "c/"+uitoa(m.ID) {
			t.Fatalf("memif %+v has the wrong owner", m)
		}
	}
	// a batch with failures reports them per item
	bad := []vpp.MemifSpec{
		{Owner: "ok", SocketID: id, ID: 1000, Role: vpp.MemifMaster},
		{Owner: "badsock", SocketID: 777, ID: 1},
		{Owner: "", SocketID: id, ID: 1001},
		{Owner: "other", SocketID: id, ID: 5, Role: vpp.MemifMaster}, // id 5 belongs to c/5
	}
	out, err = c.CreateMemifs(ctx, bad)
	var be *vpp.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 4 {
		t.Fatalf("batch error = %v", err)
	}
	if be.Errs[0] != nil || out[0].SwIfIndex == 0 {
		t.Fatalf("good item failed: %v", be.Errs[0])
	}
	wantRetval(t, be.Errs[1], -73, vpp.ErrInvalid)
	if !errors.Is(be.Errs[2], vpp.ErrInvalid) {
		t.Fatalf("empty owner: %v", be.Errs[2])
	}
	wantRetval(t, be.Errs[3], -68, vpp.ErrConflict)

	// raw Pipeline: replies in order, per-item retvals
	reqs := make([]api.Message, 0, 301)
	for i := 0; i < 300; i++ {
		reqs = append(reqs, setFlags(out[0].SwIfIndex, i%2 == 1))
	}
	reqs = append(reqs, setFlags(4242, true))
	replies, errs, err := c.Pipeline(ctx, reqs)
	ok(t, err)
	if len(replies) != 301 || errs[299] != nil {
		t.Fatalf("pipeline: %d replies, err[299] %v", len(replies), errs[299])
	}
	wantRetval(t, errs[300], -2, vpp.ErrNotFound)
	if i := must(c.Interface(ctx, out[0].SwIfIndex))(t); !i.AdminUp {
		t.Fatal("last pipelined flag (up) not applied in order")
	}
}

func TestSocketFilesFollowMasters(t *testing.T) {
	onBoth(t, func(t *testing.T, e *env) {
		c, ctx := e.client, e.ctx
		sock := e.path("f", "m.sock")
		id := must(c.EnsureMemifSocket(ctx, sock))(t)
		if exists(sock) {
			t.Fatal("registering a socket filename must not create the file")
		}
		m1 := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "a", SocketID: id, ID: 1}))(t)
		m2 := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "b", SocketID: id, ID: 2}))(t)
		// it is a real listening SOCK_SEQPACKET socket, as VPP's
		conn, err := net.Dial("unixpacket", sock)
		if err != nil {
			t.Fatalf("dial the memif socket: %v", err)
		}
		conn.Close()
		ok(t, c.DeleteMemif(ctx, m1.SwIfIndex))
		if !isSocket(sock) {
			t.Fatal("socket removed while a master still uses it")
		}
		ok(t, c.DeleteMemif(ctx, m2.SwIfIndex))
		// VPP 25.02 stops listening but leaves the file: vppstate removes it.
		if conn, err := net.Dial("unixpacket", sock); err == nil {
			conn.Close()
			t.Fatal("socket still listening after the last master went")
		}
		ok(t, os.Remove(sock))
		// a regular file where the socket should go: VPP refuses (-14)
		ok(t, os.WriteFile(sock, []byte("x"), 0o600))
		_, err = c.CreateMemif(ctx, vpp.MemifSpec{Owner: "a", SocketID: id, ID: 1})
		wantRetval(t, err, -14, nil)
	})
}

// The batch forms of socket registration, bridge membership and admin up:
// every item applied, per-item failures reported where they happened.
func TestBatchSocketsBridgesAdminUp(t *testing.T) {
	onBoth(t, func(t *testing.T, e *env) {
		c, ctx := e.client, e.ctx
		socks := []vpp.MemifSocket{{ID: 10, Filename: e.path("b", "a.sock")}, {ID: 11, Filename: e.path("b", "b.sock")}}
		ok(t, c.AddMemifSockets(ctx, socks))
		got := must(c.MemifSockets(ctx))(t)
		for _, s := range socks {
			if !slices.Contains(got, s) {
				t.Fatalf("socket %+v not registered: %+v", s, got)
			}
		}
		// id 10 again with another file: VPP refuses that one item.
		err := c.AddMemifSockets(ctx, []vpp.MemifSocket{{ID: 12, Filename: e.path("b", "c.sock")}, {ID: 10, Filename: e.path("b", "x.sock")}})
		var be *vpp.BatchError
		if !errors.As(err, &be) || be.Errs[0] != nil || be.Errs[1] == nil {
			t.Fatalf("conflicting socket id: %v", err)
		}
		if err := c.AddMemifSockets(ctx, []vpp.MemifSocket{{ID: 0, Filename: e.path("b", "d.sock")}}); !errors.Is(err, vpp.ErrInvalid) {
			t.Fatalf("socket id 0: %v", err)
		}

		m1 := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "c/1", SocketID: 10, ID: 1, Role: vpp.MemifMaster}))(t)
		m2 := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "c/2", SocketID: 11, ID: 1, Role: vpp.MemifMaster}))(t)
		must(c.CreateBridgeDomain(ctx, vpp.DefaultBridgeDomain(9, "bridge")))(t)
		err = c.AddToKnownBridges(ctx, []vpp.BridgePort{{SwIfIndex: m1.SwIfIndex, BdID: 9}, {SwIfIndex: 4242, BdID: 9}, {SwIfIndex: m2.SwIfIndex, BdID: 9}})
		if !errors.As(err, &be) || be.Errs[0] != nil || be.Errs[2] != nil {
			t.Fatalf("bridge batch: %v", err)
		}
		wantRetval(t, be.Errs[1], -2, vpp.ErrNotFound)
		if b := must(c.BridgeDomain(ctx, 9))(t); len(b.Members) != 2 {
			t.Fatalf("members = %+v, want both memifs", b.Members)
		}
		if err := c.AddToKnownBridges(ctx, []vpp.BridgePort{{SwIfIndex: m1.SwIfIndex, BdID: 0}}); !errors.Is(err, vpp.ErrInvalid) {
			t.Fatalf("bridge domain 0: %v", err)
		}

		ok(t, c.SetAdminUps(ctx, []uint32{m1.SwIfIndex, m2.SwIfIndex}))
		for _, idx := range []uint32{m1.SwIfIndex, m2.SwIfIndex} {
			if i := must(c.Interface(ctx, idx))(t); !i.AdminUp {
				t.Fatalf("interface %d not up", idx)
			}
		}
		if err := c.SetAdminUps(ctx, []uint32{4242}); !errors.As(err, &be) {
			t.Fatalf("admin up of a missing interface: %v", err)
		}
	})
}

// The untagged dumps agree with the tagged ones but for what only the
// interface dump has, and cost one VPP dump each instead of two.
func TestUntaggedDumps(t *testing.T) {
	e := newEnv(t, vppsim.Options{})
	c, ctx := e.client, e.ctx
	id := must(c.EnsureMemifSocket(ctx, e.path("u", "m.sock")))(t)
	must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "c/1", SocketID: id, ID: 1, Role: vpp.MemifMaster}))(t)
	must(c.CreateVhostUser(ctx, vpp.VhostUserSpec{Owner: "c/2", SocketPath: e.path("u", "v.sock"), Server: true}))(t)

	before := e.sim.MessageCount("sw_interface_dump")
	ms := must(c.MemifsUntagged(ctx))(t)
	vs := must(c.VhostUsersUntagged(ctx))(t)
	if n := e.sim.MessageCount("sw_interface_dump") - before; n != 0 {
		t.Fatalf("untagged dumps read the interfaces %d times", n)
	}
	tm := must(c.Memifs(ctx))(t)
	tv := must(c.VhostUsers(ctx))(t)
	if len(ms) != 1 || len(tm) != 1 || ms[0].Tag != "" || tm[0].Tag != "uspace:c/1" {
		t.Fatalf("memifs %+v, tagged %+v", ms, tm)
	}
	ms[0].Tag = tm[0].Tag
	if !reflect.DeepEqual(ms[0], tm[0]) {
		t.Fatalf("untagged memif %+v differs from %+v beyond the tag", ms[0], tm[0])
	}
	if len(vs) != 1 || len(tv) != 1 || vs[0].SocketPath != tv[0].SocketPath || vs[0].SwIfIndex != tv[0].SwIfIndex || tv[0].Tag != "uspace:c/2" {
		t.Fatalf("vhost-users %+v, tagged %+v", vs, tv)
	}
}

// TestInterfaceEvents: a client dialled with InterfaceEvents hears what
// another API client does to interfaces (created, set down, deleted), one
// coalesced event per sw_if_index, a deletion kept even when the index is
// reused; a client without it hears nothing.
func TestInterfaceEvents(t *testing.T) {
	e := newEnv(t, vppsim.Options{})
	watcher := vpp.Dial(vpp.Config{Socket: e.sim.Socket(), Logger: quietLogger(), InterfaceEvents: true})
	t.Cleanup(func() { _ = watcher.Close() })
	ok(t, watcher.WaitConnected(e.ctx))
	c, ctx := e.client, e.ctx
	take := func(want int) []vpp.InterfaceEvent {
		t.Helper()
		var got []vpp.InterfaceEvent
		deadline := time.After(10 * time.Second)
		for len(got) < want {
			select {
			case <-watcher.InterfaceEvents():
				got = append(got, watcher.TakeInterfaceEvents()...)
			case <-deadline:
				t.Fatalf("events %+v, want %d", got, want)
			}
		}
		return got
	}

	sid := must(c.EnsureMemifSocket(ctx, e.path("shared", "ev.sock")))(t)
	m := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "ev", SocketID: sid, Role: vpp.MemifMaster}))(t)
	ok(t, c.SetAdminUp(ctx, m.SwIfIndex, true))
	evs := take(1)
	if evs[0].SwIfIndex != m.SwIfIndex || evs[0].Generation != watcher.Generation() {
		t.Fatalf("events after create %+v", evs)
	}
	// The latest state of the index, once the admin-up event is in.
	for !evs[len(evs)-1].AdminUp {
		evs = take(1)
	}

	ok(t, c.SetAdminUp(ctx, m.SwIfIndex, false))
	if evs := take(1); evs[0].SwIfIndex != m.SwIfIndex || evs[0].AdminUp || evs[0].Deleted {
		t.Fatalf("events after admin down %+v", evs)
	}

	// Deleted, and the index reused by a new memif before anyone takes the
	// events: the deletion is still reported.
	ok(t, c.DeleteMemif(ctx, m.SwIfIndex))
	m2 := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "ev2", SocketID: sid, ID: 1, Role: vpp.MemifMaster}))(t)
	if m2.SwIfIndex != m.SwIfIndex {
		t.Skipf("index not reused (%d, %d): nothing more to check", m.SwIfIndex, m2.SwIfIndex)
	}
	// Let both events reach the watcher before taking them: the deletion
	// must survive the later event of the same index.
	time.Sleep(100 * time.Millisecond)
	if evs := take(1); len(evs) != 1 || !evs[0].Deleted {
		t.Fatalf("events after delete and reuse %+v", evs)
	}
	select {
	case <-c.InterfaceEvents():
		t.Fatal("a client without InterfaceEvents signalled events")
	default:
	}
}
