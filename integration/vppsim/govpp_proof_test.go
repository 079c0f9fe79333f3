package vppsim_test

// This file proves the simulator against GoVPP alone: core.Connect +
// socketclient + the generated binapi RPC services, no uspace code. Every
// message the simulator implements is round-tripped and its reply or dump
// checked.

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/fib_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/core"

	"github.com/uspace-io/uspace/integration/vppsim"
)

const anyIndex = interface_types.InterfaceIndex(^uint32(0))

// newSim starts a simulator in a short temp dir (sun_path is 108 bytes).
func newSim(t *testing.T, opts vppsim.Options) *vppsim.Sim {
	t.Helper()
	dir, err := os.MkdirTemp("", "vs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if opts.Socket == "" {
		opts.Socket = filepath.Join(dir, "api.sock")
	}
	if opts.RuntimeDir == "" {
		opts.RuntimeDir = filepath.Join(dir, "run")
	}
	s, err := vppsim.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func govppConnect(t *testing.T, socket string) *core.Connection {
	t.Helper()
	conn, err := core.Connect(socketclient.NewVppClient(socket))
	if err != nil {
		t.Fatalf("govpp connect: %v", err)
	}
	t.Cleanup(conn.Disconnect)
	return conn
}

func retval(t *testing.T, err error) int32 {
	t.Helper()
	var ve api.VPPApiError
	if !errors.As(err, &ve) {
		t.Fatalf("expected a VPPApiError, got %v", err)
	}
	return int32(ve)
}

type recv[T any] interface{ Recv() (T, error) }

type dumpResult[T any] struct {
	items []T
	err   error
}

// dump drains a generated dump client: dump[*X](svc.XDump(ctx, req)).get(t).
func dump[T any, C recv[T]](c C, err error) dumpResult[T] {
	if err != nil {
		return dumpResult[T]{err: err}
	}
	var out []T
	for {
		d, err := c.Recv()
		if err == io.EOF {
			return dumpResult[T]{items: out}
		}
		if err != nil {
			return dumpResult[T]{err: err}
		}
		out = append(out, d)
	}
}

func (r dumpResult[T]) get(t *testing.T) []T {
	t.Helper()
	if r.err != nil {
		t.Fatalf("dump: %v", r.err)
	}
	return r.items
}

func TestGoVPPOnlyRoundTrip(t *testing.T) {
	s := newSim(t, vppsim.Options{})
	conn := govppConnect(t, s.Socket())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The message table GoVPP received lists what the simulator implements.
	ch, err := conn.NewAPIChannel()
	if err != nil {
		t.Fatal(err)
	}
	var needed []api.Message
	for _, msgs := range [][]api.Message{
		{(*memclnt.ControlPing)(nil), (*memclnt.ControlPingReply)(nil), (*memclnt.SockclntDelete)(nil), (*memclnt.SockclntDeleteReply)(nil)},
		{(*vpe.ShowVersion)(nil), (*vpe.ShowVersionReply)(nil)},
		{(*memif.MemifCreateV2)(nil), (*memif.MemifDump)(nil), (*memif.MemifDetails)(nil), (*memif.MemifSocketFilenameAddDelV2)(nil)},
		{(*interfaces.SwInterfaceDump)(nil), (*interfaces.SwInterfaceDetails)(nil), (*interfaces.SwInterfaceEvent)(nil)},
	} {
		needed = append(needed, msgs...)
	}
	if err := ch.CheckCompatiblity(needed...); err != nil {
		t.Fatalf("compatibility: %v", err)
	}
	// Something the simulator does not implement is reported incompatible.
	var ce *api.CompatibilityError
	if err := ch.CheckCompatiblity((*interfaces.CreateLoopback)(nil)); !errors.As(err, &ce) {
		t.Fatalf("create_loopback should be incompatible, got %v", err)
	}

	// control_ping via the old channel API (multi-request uses the same context).
	pingReply := &memclnt.ControlPingReply{}
	if err := ch.SendRequest(&memclnt.ControlPing{}).ReceiveReply(pingReply); err != nil {
		t.Fatal(err)
	}
	if pingReply.VpePID == 0 || pingReply.VpePID != s.Snapshot().VpePID {
		t.Fatalf("control_ping_reply vpe_pid = %d, want %d", pingReply.VpePID, s.Snapshot().VpePID)
	}
	// A dump through the channel API: details then control_ping_reply.
	var names []string
	req := ch.SendMultiRequest(&interfaces.SwInterfaceDump{SwIfIndex: anyIndex})
	for {
		d := &interfaces.SwInterfaceDetails{}
		last, err := req.ReceiveReply(d)
		if err != nil {
			t.Fatal(err)
		}
		if last {
			break
		}
		names = append(names, d.InterfaceName)
	}
	if !slices.Equal(names, []string{"local0"}) {
		t.Fatalf("interfaces on a fresh sim = %v, want [local0]", names)
	}
	ch.Close()

	// show_version
	ver, err := vpe.NewServiceClient(conn).ShowVersion(ctx, &vpe.ShowVersion{})
	if err != nil || ver.Version != vppsim.DefaultVersion || ver.Program != "vpe" {
		t.Fatalf("show_version = %+v, %v", ver, err)
	}
	if _, err := memclnt.NewServiceClient(conn).ControlPing(ctx, &memclnt.ControlPing{}); err != nil {
		t.Fatal(err)
	}

	// memif socket filenames: id 0 is pre-registered.
	mc := memif.NewServiceClient(conn)
	socks := dump[*memif.MemifSocketFilenameDetails](mc.MemifSocketFilenameDump(ctx, &memif.MemifSocketFilenameDump{})).get(t)
	if len(socks) != 1 || socks[0].SocketID != 0 || socks[0].SocketFilename != filepath.Join(s.RuntimeDir(), "memif.sock") {
		t.Fatalf("default memif socket = %+v", socks)
	}
	sockDir := filepath.Join(s.RuntimeDir(), "m")
	if err := os.MkdirAll(sockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	sockPath := filepath.Join(sockDir, "a.sock")
	// v1 refuses ids 0 and ~0.
	_, err = mc.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: true, SocketID: 0, SocketFilename: sockPath})
	if rv := retval(t, err); rv != -73 {
		t.Fatalf("add socket id 0: retval %d, want -73", rv)
	}
	if _, err := mc.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: true, SocketID: 7, SocketFilename: sockPath}); err != nil {
		t.Fatal(err)
	}
	// v2 with ~0 lets VPP allocate.
	v2, err := mc.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: ^uint32(0), SocketFilename: filepath.Join(sockDir, "b.sock")})
	if err != nil || v2.SocketID == 0 || v2.SocketID == ^uint32(0) || v2.SocketID == 7 {
		t.Fatalf("add_del_v2 allocate = %+v, %v", v2, err)
	}
	// same id, other file -> ENTRY_ALREADY_EXISTS; a missing directory is
	// accepted, as VPP 25.02 does (its master memif fails later)
	_, err = mc.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: true, SocketID: 7, SocketFilename: filepath.Join(sockDir, "c.sock")})
	if rv := retval(t, err); rv != -116 {
		t.Fatalf("re-add id 7 with another file: retval %d, want -116", rv)
	}
	if _, err = mc.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: true, SocketID: 8, SocketFilename: "/nonexistent-dir/x.sock"}); err != nil {
		t.Fatalf("socket in missing dir: %v, want accepted", err)
	}
	_, err = mc.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 8})
	if rv := retval(t, err); rv != -14 {
		t.Fatalf("master on a socket in a missing dir: retval %d, want -14", rv)
	}
	if _, err = mc.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: false, SocketID: 8}); err != nil {
		t.Fatal(err)
	}

	// memif_create (v1) and memif_create_v2
	m1, err := mc.MemifCreate(ctx, &memif.MemifCreate{Role: memif.MEMIF_ROLE_API_MASTER, Mode: memif.MEMIF_MODE_API_ETHERNET, SocketID: 7, ID: 0})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := mc.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, Mode: memif.MEMIF_MODE_API_IP, SocketID: 7, ID: 1, RingSize: 2048, BufferSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if m1.SwIfIndex != 1 || m2.SwIfIndex != 2 {
		t.Fatalf("sw_if_index allocation = %d, %d; want 1, 2", m1.SwIfIndex, m2.SwIfIndex)
	}
	if fi, err := os.Stat(sockPath); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("memif master did not create socket %s: %v", sockPath, err)
	}
	_, err = mc.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 7, ID: 1})
	if rv := retval(t, err); rv != -68 {
		t.Fatalf("duplicate memif id: retval %d, want -68", rv)
	}
	_, err = mc.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_SLAVE, SocketID: 7, ID: 5})
	if rv := retval(t, err); rv != -68 {
		t.Fatalf("slave on a master socket: retval %d, want -68", rv)
	}
	_, err = mc.MemifCreateV2(ctx, &memif.MemifCreateV2{SocketID: 99})
	if rv := retval(t, err); rv != -73 {
		t.Fatalf("unknown socket id: retval %d, want -73", rv)
	}
	_, err = mc.MemifCreateV2(ctx, &memif.MemifCreateV2{SocketID: 7, ID: 9, RingSize: 1000})
	if rv := retval(t, err); rv != -73 {
		t.Fatalf("ring size not a power of 2: retval %d, want -73", rv)
	}
	memifs := dump[*memif.MemifDetails](mc.MemifDump(ctx, &memif.MemifDump{})).get(t)
	if len(memifs) != 2 || memifs[0].IfName != "memif7/0" || memifs[1].IfName != "memif7/1" ||
		memifs[1].Mode != memif.MEMIF_MODE_API_IP || memifs[0].HwAddr[0] != 0x02 || memifs[0].HwAddr[1] != 0xfe {
		t.Fatalf("memif_dump = %+v", memifs)
	}

	// vhost-user
	vc := vhost_user.NewServiceClient(conn)
	vpath := filepath.Join(sockDir, "vhost0")
	v1, err := vc.CreateVhostUserIfV2(ctx, &vhost_user.CreateVhostUserIfV2{IsServer: true, SockFilename: vpath, Tag: "t-vhost"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := vc.CreateVhostUserIf(ctx, &vhost_user.CreateVhostUserIf{IsServer: true, SockFilename: vpath})
	if rv := retval(t, err); rv != -79 || again.SwIfIndex != v1.SwIfIndex {
		t.Fatalf("same vhost socket again: retval %d sw_if_index %d, want -79 and %d", rv, again.SwIfIndex, v1.SwIfIndex)
	}
	vdump := dump[*vhost_user.SwInterfaceVhostUserDetails](vc.SwInterfaceVhostUserDump(ctx, &vhost_user.SwInterfaceVhostUserDump{SwIfIndex: anyIndex})).get(t)
	if len(vdump) != 1 || vdump[0].InterfaceName != "VirtualEthernet0/0/0" || !vdump[0].IsServer || vdump[0].SockFilename != vpath {
		t.Fatalf("vhost dump = %+v", vdump)
	}
	if fi, err := os.Stat(vpath); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("vhost server socket %s missing: %v", vpath, err)
	}

	// interface settings
	ic := interfaces.NewServiceClient(conn)
	if _, err := ic.SwInterfaceSetFlags(ctx, &interfaces.SwInterfaceSetFlags{SwIfIndex: m1.SwIfIndex, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.SwInterfaceSetMtu(ctx, &interfaces.SwInterfaceSetMtu{SwIfIndex: m1.SwIfIndex, Mtu: []uint32{1500, 0, 0, 0}}); err != nil {
		t.Fatal(err)
	}
	mac, _ := ethernet_types.ParseMacAddress("02:00:00:00:00:42")
	if _, err := ic.SwInterfaceSetMacAddress(ctx, &interfaces.SwInterfaceSetMacAddress{SwIfIndex: m1.SwIfIndex, MacAddress: mac}); err != nil {
		t.Fatal(err)
	}
	_, err = ic.SwInterfaceSetMacAddress(ctx, &interfaces.SwInterfaceSetMacAddress{SwIfIndex: m2.SwIfIndex, MacAddress: mac})
	if rv := retval(t, err); rv != -9 {
		t.Fatalf("MAC on an IP-mode memif: retval %d, want -9", rv)
	}
	if _, err := ic.SwInterfaceTagAddDel(ctx, &interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: m1.SwIfIndex, Tag: "uspace:x"}); err != nil {
		t.Fatal(err)
	}
	pfx, _ := ip_types.ParseAddressWithPrefix("10.1.0.1/24")
	if _, err := ic.SwInterfaceAddDelAddress(ctx, &interfaces.SwInterfaceAddDelAddress{SwIfIndex: m1.SwIfIndex, IsAdd: true, Prefix: pfx}); err != nil {
		t.Fatal(err)
	}
	_, err = ic.SwInterfaceAddDelAddress(ctx, &interfaces.SwInterfaceAddDelAddress{SwIfIndex: m1.SwIfIndex, IsAdd: true, Prefix: pfx})
	if rv := retval(t, err); rv != -105 {
		t.Fatalf("same address twice: retval %d, want -105", rv)
	}
	other, _ := ip_types.ParseAddressWithPrefix("10.9.9.9/24")
	_, err = ic.SwInterfaceAddDelAddress(ctx, &interfaces.SwInterfaceAddDelAddress{SwIfIndex: m1.SwIfIndex, IsAdd: false, Prefix: other})
	if rv := retval(t, err); rv != -60 {
		t.Fatalf("delete absent address: retval %d, want -60", rv)
	}
	_, err = ic.SwInterfaceSetFlags(ctx, &interfaces.SwInterfaceSetFlags{SwIfIndex: 4242})
	if rv := retval(t, err); rv != -2 {
		t.Fatalf("set flags on unknown index: retval %d, want -2", rv)
	}
	ifs := dump[*interfaces.SwInterfaceDetails](ic.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: m1.SwIfIndex})).get(t)
	if len(ifs) != 1 {
		t.Fatalf("filtered sw_interface_dump = %d entries", len(ifs))
	}
	d := ifs[0]
	if d.InterfaceName != "memif7/0" || d.Tag != "uspace:x" || d.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP == 0 ||
		d.Mtu[0] != 1500 || d.L2Address != mac || d.InterfaceDevType != "memif" {
		t.Fatalf("sw_interface_details = %+v", d)
	}
	all := dump[*interfaces.SwInterfaceDetails](ic.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: anyIndex, NameFilterValid: true, NameFilter: "MEMIF"})).get(t)
	if len(all) != 2 {
		t.Fatalf("name filter memif: %d entries, want 2", len(all))
	}
	ipc := ip.NewServiceClient(conn)
	addrs := dump[*ip.IPAddressDetails](ipc.IPAddressDump(ctx, &ip.IPAddressDump{SwIfIndex: m1.SwIfIndex})).get(t)
	if len(addrs) != 1 || addrs[0].Prefix.String() != "10.1.0.1/24" {
		t.Fatalf("ip_address_dump = %+v", addrs)
	}

	// routes
	gw, _ := ip_types.ParseAddress("10.1.0.254")
	dst, _ := ip_types.ParsePrefix("192.168.0.0/16")
	route := ip.IPRoute{Prefix: dst, NPaths: 1, Paths: []fib_types.FibPath{{
		SwIfIndex: uint32(m1.SwIfIndex), Proto: fib_types.FIB_API_PATH_NH_PROTO_IP4, Nh: fib_types.FibPathNh{Address: gw.Un},
	}}}
	if _, err := ipc.IPRouteAddDel(ctx, &ip.IPRouteAddDel{IsAdd: true, Route: route}); err != nil {
		t.Fatal(err)
	}
	_, err = ipc.IPRouteAddDel(ctx, &ip.IPRouteAddDel{IsAdd: true, Route: ip.IPRoute{TableID: 5, Prefix: dst, NPaths: 1, Paths: route.Paths}})
	if rv := retval(t, err); rv != -3 {
		t.Fatalf("route in missing table: retval %d, want -3", rv)
	}
	routes := dump[*ip.IPRouteDetails](ipc.IPRouteDump(ctx, &ip.IPRouteDump{Table: ip.IPTable{TableID: 0}})).get(t)
	found := map[string]bool{}
	for _, r := range routes {
		found[r.Route.Prefix.String()] = true
		if r.Route.Prefix.String() == "192.168.0.0/16" && (len(r.Route.Paths) != 1 || r.Route.Paths[0].Nh.Address.GetIP4() != gw.Un.GetIP4()) {
			t.Fatalf("route paths = %+v", r.Route.Paths)
		}
	}
	// VPP 25.02 shows the attached route as the address with the
	// subnet length, and drops the network and broadcast addresses.
	for _, p := range []string{"0.0.0.0/0", "10.1.0.1/24", "10.1.0.1/32", "10.1.0.0/32", "10.1.0.255/32", "192.168.0.0/16"} {
		if !found[p] {
			t.Fatalf("route %s missing from ip_route_dump: %v", p, found)
		}
	}

	// bridge domains
	lc := l2.NewServiceClient(conn)
	if _, err := lc.BridgeDomainAddDel(ctx, &l2.BridgeDomainAddDel{BdID: 10, Learn: true, Forward: true, Flood: true, UuFlood: true, BdTag: "uspace:net", IsAdd: true}); err != nil {
		t.Fatal(err)
	}
	_, err = lc.BridgeDomainAddDel(ctx, &l2.BridgeDomainAddDel{BdID: 10, IsAdd: true})
	if rv := retval(t, err); rv != -119 {
		t.Fatalf("BD exists: retval %d, want -119", rv)
	}
	bdv2, err := lc.BridgeDomainAddDelV2(ctx, &l2.BridgeDomainAddDelV2{BdID: ^uint32(0), IsAdd: true})
	if err != nil || bdv2.BdID == 0 || bdv2.BdID > 0xFFFFFF {
		t.Fatalf("bridge_domain_add_del_v2 allocate = %+v, %v", bdv2, err)
	}
	if _, err := lc.SwInterfaceSetL2Bridge(ctx, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: m1.SwIfIndex, BdID: 10, Enable: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.SwInterfaceSetL2Bridge(ctx, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: v1.SwIfIndex, BdID: 10, Shg: 1, Enable: true}); err != nil {
		t.Fatal(err)
	}
	_, err = lc.BridgeDomainAddDel(ctx, &l2.BridgeDomainAddDel{BdID: 10, IsAdd: false})
	if rv := retval(t, err); rv != -120 {
		t.Fatalf("delete BD in use: retval %d, want -120", rv)
	}
	bds := dump[*l2.BridgeDomainDetails](lc.BridgeDomainDump(ctx, &l2.BridgeDomainDump{BdID: 10, SwIfIndex: anyIndex})).get(t)
	if len(bds) != 1 || bds[0].BdTag != "uspace:net" || bds[0].NSwIfs != 2 || bds[0].SwIfDetails[1].Shg != 1 || !bds[0].Learn {
		t.Fatalf("bridge_domain_dump = %+v", bds)
	}
	if none := dump[*l2.BridgeDomainDetails](lc.BridgeDomainDump(ctx, &l2.BridgeDomainDump{BdID: 0, SwIfIndex: anyIndex})).get(t); len(none) != 0 {
		t.Fatalf("bd 0 must not be dumped: %+v", none)
	}
	if _, err := lc.SwInterfaceSetL2Bridge(ctx, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: v1.SwIfIndex, Enable: false}); err != nil {
		t.Fatal(err)
	}

	// deletes
	if _, err := vc.DeleteVhostUserIf(ctx, &vhost_user.DeleteVhostUserIf{SwIfIndex: v1.SwIfIndex}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vpath); !os.IsNotExist(err) {
		t.Fatalf("vhost socket still there after delete: %v", err)
	}
	_, err = vc.DeleteVhostUserIf(ctx, &vhost_user.DeleteVhostUserIf{SwIfIndex: v1.SwIfIndex})
	if rv := retval(t, err); rv != -2 {
		t.Fatalf("delete vhost twice: retval %d, want -2", rv)
	}
	_, err = mc.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: m2.SwIfIndex})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mc.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: false, SocketID: 7})
	if rv := retval(t, err); rv != -74 {
		t.Fatalf("delete socket in use: retval %d, want -74", rv)
	}
	if _, err := mc.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: m1.SwIfIndex}); err != nil {
		t.Fatal(err)
	}
	// VPP 25.02 stops listening and leaves the file behind.
	if c, err := net.Dial("unixpacket", sockPath); err == nil {
		c.Close()
		t.Fatal("memif socket still listening after the last master went")
	}
	if _, err := os.Stat(sockPath); err != nil {
		t.Fatalf("memif socket file gone with the last master (VPP 25.02 leaves it): %v", err)
	}
	// the BD lost its member with the interface, the route through it went too
	bds = dump[*l2.BridgeDomainDetails](lc.BridgeDomainDump(ctx, &l2.BridgeDomainDump{BdID: 10, SwIfIndex: anyIndex})).get(t)
	if len(bds) != 1 || bds[0].NSwIfs != 0 {
		t.Fatalf("BD after member deleted = %+v", bds)
	}
	if _, err := lc.BridgeDomainAddDel(ctx, &l2.BridgeDomainAddDel{BdID: 10, IsAdd: false}); err != nil {
		t.Fatal(err)
	}
	_, err = lc.BridgeDomainAddDel(ctx, &l2.BridgeDomainAddDel{BdID: 10, IsAdd: false})
	if rv := retval(t, err); rv != -6 {
		t.Fatalf("delete BD twice: retval %d, want -6", rv)
	}
	if _, err := mc.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: false, SocketID: 7}); err != nil {
		t.Fatal(err)
	}
	// freed sw_if_indexes are reused last-freed first, like VPP's pools
	m3, err := mc.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_SLAVE, SocketID: 0, ID: 3})
	if err != nil || m3.SwIfIndex != m1.SwIfIndex {
		t.Fatalf("reuse of sw_if_index: got %v (%v), want %d", m3, err, m1.SwIfIndex)
	}
	routes = dump[*ip.IPRouteDetails](ipc.IPRouteDump(ctx, &ip.IPRouteDump{Table: ip.IPTable{TableID: 0}})).get(t)
	// As in VPP 25.02: the address's own routes leave with the interface,
	// the route added through the API stays (unresolved) until deleted.
	var api bool
	for _, r := range routes {
		switch r.Route.Prefix.String() {
		case "10.1.0.1/32":
			t.Fatalf("address route 10.1.0.1/32 survived its interface")
		case "192.168.0.0/16":
			api = true
		}
	}
	if !api {
		t.Fatalf("API route 192.168.0.0/16 went with its interface; real VPP keeps it")
	}
	if got := s.MessageCount("memif_create_v2"); got < 4 {
		t.Fatalf("memif_create_v2 count = %d", got)
	}
}

// TestGoVPPEventsAndFaults covers want_interface_events, injected
// failures, latency and the reconnect of GoVPP's AsyncConnect after a
// restart, again with GoVPP only.
func TestGoVPPEventsAndFaults(t *testing.T) {
	s := newSim(t, vppsim.Options{})
	conn := govppConnect(t, s.Socket())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	w, err := conn.WatchEvent(ctx, &interfaces.SwInterfaceEvent{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ic := interfaces.NewServiceClient(conn)
	if _, err := ic.WantInterfaceEvents(ctx, &interfaces.WantInterfaceEvents{EnableDisable: 1, PID: 77}); err != nil {
		t.Fatal(err)
	}
	mc := memif.NewServiceClient(conn)
	m, err := mc.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_SLAVE})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ic.SwInterfaceSetFlags(ctx, &interfaces.SwInterfaceSetFlags{SwIfIndex: m.SwIfIndex, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP}); err != nil {
		t.Fatal(err)
	}
	// As VPP 25.02: one event announcing the new interface (flags 0), one
	// for admin up.
	for _, want := range []interface_types.IfStatusFlags{0, interface_types.IF_STATUS_API_FLAG_ADMIN_UP} {
		select {
		case ev := <-w.Events():
			e := ev.(*interfaces.SwInterfaceEvent)
			if e.SwIfIndex != m.SwIfIndex || e.Flags != want || e.Deleted || e.PID != 77 {
				t.Fatalf("event = %+v, want flags %v", e, want)
			}
		case <-ctx.Done():
			t.Fatal("no sw_interface_event")
		}
	}

	if err := s.FailNext("memif_create_v2", 2, -1); err != nil {
		t.Fatal(err)
	}
	if err := s.FailNext("memif_dump", 1, -1); err == nil {
		t.Fatal("FailNext on a dump must be refused")
	}
	for i := 0; i < 2; i++ {
		_, err = mc.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_SLAVE, ID: 10})
		if rv := retval(t, err); rv != -1 {
			t.Fatalf("injected failure %d: retval %d, want -1", i, rv)
		}
	}
	if _, err := mc.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_SLAVE, ID: 10}); err != nil {
		t.Fatalf("third call should pass: %v", err)
	}

	if err := s.SetLatency("show_version", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := vpe.NewServiceClient(conn).ShowVersion(ctx, &vpe.ShowVersion{}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("latency not applied: %v", el)
	}
	s.ClearFaults()
	start = time.Now()
	if _, err := vpe.NewServiceClient(conn).ShowVersion(ctx, &vpe.ShowVersion{}); err != nil || time.Since(start) > 250*time.Millisecond {
		t.Fatalf("after ClearFaults: %v in %v", err, time.Since(start))
	}
}

// TestGoVPPAsyncReconnectAfterRestart: GoVPP's own reconnect works against a
// restarting simulator and re-resolves the moved message ids. (No dump runs
// on the connection before the reconnect: GoVPP v0.12.0 rewrites its
// id maps on reconnect without locking, which the race detector would
// rightly report against an earlier dump's lookups.)
func TestGoVPPAsyncReconnectAfterRestart(t *testing.T) {
	s := newSim(t, vppsim.Options{})
	conn, events, err := core.AsyncConnect(socketclient.NewVppClient(s.Socket()), 10, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Disconnect()
	wait := func(want core.ConnectionState) {
		t.Helper()
		timeout := time.After(15 * time.Second)
		for {
			select {
			case ev := <-events:
				if ev.State == want {
					return
				}
			case <-timeout:
				t.Fatalf("no %v event", want)
			}
		}
	}
	wait(core.Connected)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ping := func() uint32 {
		r, err := memclnt.NewServiceClient(conn).ControlPing(ctx, &memclnt.ControlPing{})
		if err != nil {
			t.Fatal(err)
		}
		return r.VpePID
	}
	pid1 := ping()
	before, _ := s.MessageID("memif_dump_51077d14")
	if _, err := memif.NewServiceClient(conn).MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_SLAVE}); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	wait(core.Disconnected)
	wait(core.Connected)
	if pid2 := ping(); pid2 == pid1 {
		t.Fatalf("vpe_pid unchanged across restart: %d", pid2)
	}
	after, _ := s.MessageID("memif_dump_51077d14")
	if before == after {
		t.Fatal("message ids expected to move across a restart")
	}
	// state is gone; the re-resolved message ids work
	ms := dump[*memif.MemifDetails](memif.NewServiceClient(conn).MemifDump(ctx, &memif.MemifDump{})).get(t)
	if len(ms) != 0 {
		t.Fatalf("memifs after restart = %+v", ms)
	}
}
