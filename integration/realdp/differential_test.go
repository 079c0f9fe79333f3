package realdp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/fib_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vxlan"
	"go.fd.io/govpp/core"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/integration/vppsim"
)

// vppAPI is the binary API services the differential steps call.
type vppAPI struct {
	mem   memif.RPCService
	ifs   interfaces.RPCService
	l2    l2.RPCService
	ip    ip.RPCService
	vhost vhost_user.RPCService
	vxlan vxlan.RPCService
	afp   af_packet.RPCService
	dir   string // a directory of the instance's own, for socket files
	// link and peer are the ends of a veth pair for af_packet; ids keeps
	// sw_if_indexes between steps.
	link, peer string
	ids        map[string]uint32
	// netns is a network namespace's path, for abstract memif sockets.
	netns string
}

// step is one call, or a few, whose answer both dataplanes must give alike:
// retvals and what dumps say, without anything instance-specific (paths
// are given relative to the instance's directory).
type step struct {
	name string
	do   func(ctx context.Context, a *vppAPI) string
}

func rv(err error) string {
	var ve api.VPPApiError
	if errors.As(err, &ve) {
		return fmt.Sprintf("retval %d", int32(ve))
	}
	if err != nil {
		return "error " + err.Error()
	}
	return "ok"
}

func drain[T any](r interface{ Recv() (T, error) }, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	var out []T
	for {
		m, err := r.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// steps follow what uspace's agents send, plus the corners where VPP's own
// answers are easy to get wrong (README of ../shared/dataplanes).
var steps = []step{
	{"socket id 0 is refused", func(ctx context.Context, a *vppAPI) string {
		_, err := a.mem.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: true, SocketID: 0, SocketFilename: a.dir + "/x.sock"})
		return rv(err)
	}},
	{"socket filename in a missing directory is accepted", func(ctx context.Context, a *vppAPI) string {
		_, err := a.mem.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: true, SocketID: 9, SocketFilename: a.dir + "/missing/m.sock"})
		return rv(err)
	}},
	{"a master on it then fails", func(ctx context.Context, a *vppAPI) string {
		_, err := a.mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 9})
		return rv(err)
	}},
	{"socket filename 1", func(ctx context.Context, a *vppAPI) string {
		_, err := a.mem.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: true, SocketID: 1, SocketFilename: a.dir + "/m1.sock"})
		return rv(err)
	}},
	{"socket id 1 again", func(ctx context.Context, a *vppAPI) string {
		_, err := a.mem.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: true, SocketID: 1, SocketFilename: a.dir + "/other.sock"})
		return rv(err)
	}},
	{"master memif", func(ctx context.Context, a *vppAPI) string {
		r, err := a.mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 1, ID: 0})
		if err != nil {
			return rv(err)
		}
		_, serr := os.Stat(a.dir + "/m1.sock")
		return fmt.Sprintf("sw_if_index %d, socket file made: %v", r.SwIfIndex, serr == nil)
	}},
	{"same memif id twice", func(ctx context.Context, a *vppAPI) string {
		_, err := a.mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 1, ID: 0})
		return rv(err)
	}},
	{"IP-mode memif: MAC refused", func(ctx context.Context, a *vppAPI) string {
		r, err := a.mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, Mode: memif.MEMIF_MODE_API_IP, SocketID: 1, ID: 1})
		if err != nil {
			return rv(err)
		}
		_, err = a.ifs.SwInterfaceSetMacAddress(ctx, &interfaces.SwInterfaceSetMacAddress{SwIfIndex: r.SwIfIndex,
			MacAddress: ethernet_types.MacAddress{0x02, 0xfe, 1, 2, 3, 4}})
		return fmt.Sprintf("sw_if_index %d, set mac: %s", r.SwIfIndex, rv(err))
	}},
	{"interface dump", func(ctx context.Context, a *vppAPI) string {
		ds, err := drain(a.ifs.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)}))
		if err != nil {
			return rv(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, fmt.Sprintf("%d %s type %d mtu %d", d.SwIfIndex, d.InterfaceName, d.Type, d.LinkMtu))
		}
		return strings.Join(out, "; ")
	}},
	{"bridge domain 4 twice", func(ctx context.Context, a *vppAPI) string {
		bd := &l2.BridgeDomainAddDel{BdID: 4, Flood: true, UuFlood: true, Forward: true, Learn: true, IsAdd: true}
		_, err1 := a.l2.BridgeDomainAddDel(ctx, bd)
		_, err2 := a.l2.BridgeDomainAddDel(ctx, bd)
		return rv(err1) + ", " + rv(err2)
	}},
	{"memif into the bridge", func(ctx context.Context, a *vppAPI) string {
		_, err := a.l2.SwInterfaceSetL2Bridge(ctx, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: 1, BdID: 4, Enable: true})
		if err != nil {
			return rv(err)
		}
		ds, err := drain(a.l2.BridgeDomainDump(ctx, &l2.BridgeDomainDump{BdID: 4, SwIfIndex: ^interface_types.InterfaceIndex(0)}))
		if err != nil || len(ds) != 1 {
			return fmt.Sprintf("dump: %d domains, %s", len(ds), rv(err))
		}
		return fmt.Sprintf("members %d", ds[0].NSwIfs)
	}},
	{"address and a route through the memif", func(ctx context.Context, a *vppAPI) string {
		_, err := a.ifs.SwInterfaceAddDelAddress(ctx, &interfaces.SwInterfaceAddDelAddress{SwIfIndex: 2, IsAdd: true,
			Prefix: mustPrefix("10.1.1.2/24")})
		if err != nil {
			return rv(err)
		}
		_, err = a.ip.IPRouteAddDel(ctx, &ip.IPRouteAddDel{IsAdd: true, Route: ip.IPRoute{
			Prefix: ip_types.Prefix(mustPrefix("10.99.0.0/16")), NPaths: 1,
			Paths: []fib_types.FibPath{{SwIfIndex: 2, Weight: 1, Proto: fib_types.FIB_API_PATH_NH_PROTO_IP4,
				Nh: fib_types.FibPathNh{Address: mustPrefix("10.1.1.1/32").Address.Un}}}}})
		return rv(err) + "; routes " + routes(ctx, a)
	}},
	{"delete the IP-mode memif: its API route stays", func(ctx context.Context, a *vppAPI) string {
		_, err := a.mem.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: 2})
		return rv(err) + "; routes " + routes(ctx, a)
	}},
	{"take the memif out, delete the domain twice", func(ctx context.Context, a *vppAPI) string {
		_, err1 := a.l2.SwInterfaceSetL2Bridge(ctx, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: 1, BdID: 4, Enable: false})
		_, err2 := a.l2.BridgeDomainAddDel(ctx, &l2.BridgeDomainAddDel{BdID: 4, IsAdd: false})
		_, err3 := a.l2.BridgeDomainAddDel(ctx, &l2.BridgeDomainAddDel{BdID: 4, IsAdd: false})
		return strings.Join([]string{rv(err1), rv(err2), rv(err3)}, ", ")
	}},
	{"delete the last master: its socket file stays", func(ctx context.Context, a *vppAPI) string {
		_, err1 := a.mem.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: 1})
		_, err2 := a.mem.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: false, SocketID: 1})
		_, serr := os.Stat(a.dir + "/m1.sock")
		return fmt.Sprintf("%s, %s, socket file there: %v", rv(err1), rv(err2), serr == nil)
	}},
	{"a master again on the socket file left behind", func(ctx context.Context, a *vppAPI) string {
		_, err1 := a.mem.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: true, SocketID: 2, SocketFilename: a.dir + "/m1.sock"})
		r, err2 := a.mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 2, ID: 0})
		_, err3 := a.mem.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: r.SwIfIndex})
		_, err4 := a.mem.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: false, SocketID: 2})
		return strings.Join([]string{rv(err1), rv(err2), rv(err3), rv(err4)}, ", ")
	}},
	{"connected routes only while up", func(ctx context.Context, a *vppAPI) string {
		r, err := a.mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_SLAVE, SocketID: 0, ID: 5})
		if err != nil {
			return rv(err)
		}
		_, err = a.ifs.SwInterfaceAddDelAddress(ctx, &interfaces.SwInterfaceAddDelAddress{SwIfIndex: r.SwIfIndex, IsAdd: true,
			Prefix: mustPrefix("10.2.2.2/24")})
		down := routes(ctx, a)
		_, err2 := a.ifs.SwInterfaceSetFlags(ctx, &interfaces.SwInterfaceSetFlags{SwIfIndex: r.SwIfIndex, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP})
		up := routes(ctx, a)
		_, err3 := a.ifs.SwInterfaceSetFlags(ctx, &interfaces.SwInterfaceSetFlags{SwIfIndex: r.SwIfIndex})
		again := routes(ctx, a)
		_, err4 := a.mem.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: r.SwIfIndex})
		return fmt.Sprintf("%s %s %s %s; down: %s; up: %s; down again: %s", rv(err), rv(err2), rv(err3), rv(err4), down, up, again)
	}},
	{"two interfaces' paths of one prefix (is_multipath)", func(ctx context.Context, a *vppAPI) string {
		var idx [2]interface_types.InterfaceIndex
		for i := range idx {
			r, err := a.mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_SLAVE, SocketID: 0, ID: uint32(7 + i)})
			if err != nil {
				return rv(err)
			}
			idx[i] = r.SwIfIndex
		}
		path := func(i int) fib_types.FibPath {
			return fib_types.FibPath{SwIfIndex: uint32(idx[i]), Weight: 1, Proto: fib_types.FIB_API_PATH_NH_PROTO_IP4,
				Nh: fib_types.FibPathNh{Address: mustPrefix(fmt.Sprintf("10.%d.0.1/32", 7+i)).Address.Un}}
		}
		call := func(add, multipath bool, paths ...fib_types.FibPath) string {
			_, err := a.ip.IPRouteAddDel(ctx, &ip.IPRouteAddDel{IsAdd: add, IsMultipath: multipath, Route: ip.IPRoute{
				Prefix: ip_types.Prefix(mustPrefix("10.98.0.0/16")), NPaths: uint8(len(paths)), Paths: paths}})
			return rv(err) + " " + routePaths(ctx, a, "10.98.0.0/16")
		}
		out := []string{
			"add 0: " + call(true, true, path(0)),
			"add 1: " + call(true, true, path(1)),
			"add 0 again: " + call(true, true, path(0)),
			"delete 0: " + call(false, true, path(0)),
			"delete 0 again: " + call(false, true, path(0)),
			"add 0: " + call(true, true, path(0)),
			"replace with 0: " + call(true, false, path(0)),
			"add 1: " + call(true, true, path(1)),
			"delete naming 1, not multipath: " + call(false, false, path(1)),
			"add 0, 1: " + call(true, true, path(0), path(1)),
			"delete 0, 1: " + call(false, true, path(0), path(1)),
		}
		for _, i := range idx {
			_, err := a.mem.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: i})
			out = append(out, rv(err))
		}
		return strings.Join(out, "; ")
	}},
	{"delete what is gone", func(ctx context.Context, a *vppAPI) string {
		_, err1 := a.mem.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: 1})
		_, err2 := a.mem.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: false, SocketID: 1})
		return rv(err1) + ", " + rv(err2)
	}},
	{"vhost-user server and delete", func(ctx context.Context, a *vppAPI) string {
		r, err := a.vhost.CreateVhostUserIfV2(ctx, &vhost_user.CreateVhostUserIfV2{IsServer: true, SockFilename: a.dir + "/v.sock"})
		if err != nil {
			return rv(err)
		}
		_, serr := os.Stat(a.dir + "/v.sock")
		_, err = a.vhost.DeleteVhostUserIf(ctx, &vhost_user.DeleteVhostUserIf{SwIfIndex: r.SwIfIndex})
		_, gone := os.Stat(a.dir + "/v.sock")
		return fmt.Sprintf("sw_if_index %d, listening: %v, delete %s, socket file gone: %v", r.SwIfIndex, serr == nil, rv(err), gone != nil)
	}},
}

func mustPrefix(s string) ip_types.AddressWithPrefix {
	p, err := ip_types.ParseAddressWithPrefix(s)
	if err != nil {
		panic(err)
	}
	return p
}

// routes lists the IPv4 routes of table 0 that go through an interface,
// with the kind of their first path.
func routes(ctx context.Context, a *vppAPI) string {
	ds, err := drain(a.ip.IPRouteDump(ctx, &ip.IPRouteDump{Table: ip.IPTable{TableID: 0}}))
	if err != nil {
		return rv(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Route.Prefix.String())
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// routePaths lists the paths of the IPv4 route to prefix in table 0, as
// sw_if_index and next hop.
func routePaths(ctx context.Context, a *vppAPI, prefix string) string {
	ds, err := drain(a.ip.IPRouteDump(ctx, &ip.IPRouteDump{Table: ip.IPTable{TableID: 0}}))
	if err != nil {
		return rv(err)
	}
	for _, d := range ds {
		if d.Route.Prefix.String() != prefix {
			continue
		}
		var out []string
		for _, p := range d.Route.Paths {
			out = append(out, fmt.Sprintf("%d via %s", p.SwIfIndex, ip_types.Address{Af: ip_types.ADDRESS_IP4, Un: p.Nh.Address}))
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	return "none"
}

// allSteps is every differential step, in the order both dataplanes run them.
func allSteps() []step {
	return slices.Concat(steps, tunnelSteps, mtuSteps, memifNetnsSteps)
}

func runSteps(t *testing.T, socket, dir, link, peer, netns string) []string {
	t.Helper()
	conn, err := core.Connect(socketclient.NewVppClient(socket))
	if err != nil {
		t.Fatalf("connect %s: %v", socket, err)
	}
	defer conn.Disconnect()
	a := &vppAPI{mem: memif.NewServiceClient(conn), ifs: interfaces.NewServiceClient(conn), l2: l2.NewServiceClient(conn),
		ip: ip.NewServiceClient(conn), vhost: vhost_user.NewServiceClient(conn), dir: dir,
		vxlan: vxlan.NewServiceClient(conn), afp: af_packet.NewServiceClient(conn), link: link, peer: peer, ids: map[string]uint32{}, netns: netns}
	var out []string
	for _, s := range allSteps() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got := strings.NewReplacer(dir, "<dir>", link, "<link>", peer, "<peer>").Replace(s.do(ctx, a))
		cancel()
		out = append(out, got)
	}
	return out
}

// TestSimulatorAnswersAsRealVPP sends the same calls to vppsim and to a
// real VPP 25.02 and compares every answer.
func TestSimulatorAnswersAsRealVPP(t *testing.T) {
	real := realdp.StartVPP(t, realdp.VPPOptions{Name: "diff", Plugins: []string{"vxlan", "af_packet"}})
	t.Logf("real: %s", real.Version(t))
	realDir := filepath.Join(real.Dir, "d")
	simDir := harness.ShortTempDir(t)
	for _, d := range []string{realDir, simDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sim, err := vppsim.Start(vppsim.Options{Socket: filepath.Join(simDir, "api.sock"), RuntimeDir: simDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	link, peer := vethPair(t)
	netns := realdp.Netns(t, "uspace-diff-"+filepath.Base(simDir))
	want := runSteps(t, real.APISocket, realDir, link, peer, netns)
	got := runSteps(t, sim.Socket(), simDir, link, peer, netns)
	for i, s := range allSteps() {
		if got[i] != want[i] {
			t.Errorf("%s:\n  vppsim:   %s\n  real VPP: %s", s.name, got[i], want[i])
		} else {
			t.Logf("%s: %s", s.name, got[i])
		}
	}
}
