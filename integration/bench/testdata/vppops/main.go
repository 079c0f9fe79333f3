package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memif"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
)

func main() {
	socket := flag.String("socket", "", "VPP API socket")
	dir := flag.String("dir", "", "directory for memif socket files")
	mode := flag.String("mode", "host", "host, container or cold")
	n := flag.Int("n", 100, "rounds (cold: interfaces)")
	warmup := flag.Int("warmup", 3, "untimed rounds first")
	flag.Parse()
	cli := vpp.Dial(vpp.Config{Socket: *socket, ClientName: "uspace-bench-floor", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := cli.WaitConnected(ctx); err != nil {
		fail(err)
	}
	var out []time.Duration
	switch *mode {
	case "host":
		if _, err := cli.CreateBridgeDomain(ctx, vpp.DefaultBridgeDomain(4, "bridge")); err != nil {
			fail(err)
		}
		for i := range *n + *warmup {
			d, err := hostSide(ctx, cli, *dir, i)
			if err != nil {
				fail(err)
			}
			if i >= *warmup {
				out = append(out, d)
			}
		}
	case "container":
		for i := range *n + *warmup {
			d, err := containerSide(ctx, cli, *dir, i)
			if err != nil {
				fail(err)
			}
			if i >= *warmup {
				out = append(out, d)
			}
		}
	case "serve":
		if _, err := cli.CreateBridgeDomain(ctx, vpp.DefaultBridgeDomain(4, "bridge")); err != nil {
			fail(err)
		}
		sc := bufio.NewScanner(os.Stdin)
		for i := 0; sc.Scan(); i++ {
			var d time.Duration
			var err error
			switch sc.Text() {
			case "host":
				d, err = hostSide(ctx, cli, *dir, i)
			case "container":
				d, err = containerSide(ctx, cli, *dir, i)
			default:
				err = fmt.Errorf("unknown request %q", sc.Text())
			}
			if err != nil {
				fail(err)
			}
			fmt.Println(int64(d))
		}
		return
	case "cold":
		d, err := cold(ctx, cli, *dir, *n)
		if err != nil {
			fail(err)
		}
		out = append(out, d)
	default:
		fail(fmt.Errorf("unknown mode %q", *mode))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "vppops:", err)
	os.Exit(1)
}

func mac(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0xbe, 0x0d, byte(i >> 16), byte(i >> 8), byte(i)}
}

// hostSide: what the host agent issues for a new memif master in an
// existing bridge domain; then removes it, untimed.
func hostSide(ctx context.Context, cli *vpp.Client, dir string, i int) (time.Duration, error) {
	sid := uint32(1000 + i)
	path := filepath.Join(dir, fmt.Sprintf("memif-h%d.sock", i))
	start := time.Now()
	if err := cli.AddMemifSocket(ctx, sid, path); err != nil {
		return 0, err
	}
	m, err := cli.CreateMemif(ctx, vpp.MemifSpec{Owner: vppstate.Owner(path), SocketID: sid, Role: vpp.MemifMaster, Mode: vpp.MemifEthernet, MAC: mac(i)})
	if err != nil {
		return 0, err
	}
	if err := cli.AddToBridge(ctx, m.SwIfIndex, 4, 0); err != nil {
		return 0, err
	}
	if err := cli.SetAdminUp(ctx, m.SwIfIndex, true); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if err := cli.RemoveFromBridge(ctx, m.SwIfIndex); err != nil {
		return 0, err
	}
	if err := cli.DeleteMemif(ctx, m.SwIfIndex); err != nil {
		return 0, err
	}
	return took, cli.DeleteMemifSocket(ctx, sid)
}

// containerSide: what the container agent issues for a new memif slave
// with an address and a route; then removes it, untimed.
func containerSide(ctx context.Context, cli *vpp.Client, dir string, i int) (time.Duration, error) {
	sid := uint32(5000 + i)
	path := filepath.Join(dir, fmt.Sprintf("memif-c%d.sock", i))
	addr := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.2/24", 100+i/256, i%256))
	dst := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 200+i/256, i%256))
	gw := netip.MustParseAddr(fmt.Sprintf("10.%d.%d.1", 100+i/256, i%256))
	start := time.Now()
	if err := cli.AddMemifSocket(ctx, sid, path); err != nil {
		return 0, err
	}
	m, err := cli.CreateMemif(ctx, vpp.MemifSpec{Owner: vppstate.Owner(path), SocketID: sid, Role: vpp.MemifSlave, Mode: vpp.MemifEthernet, MAC: mac(i)})
	if err != nil {
		return 0, err
	}
	if _, err := cli.InterfaceAddresses(ctx, m.SwIfIndex); err != nil {
		return 0, err
	}
	if err := cli.AddAddress(ctx, m.SwIfIndex, addr); err != nil {
		return 0, err
	}
	if err := cli.SetAdminUp(ctx, m.SwIfIndex, true); err != nil {
		return 0, err
	}
	route := vpp.Route{Prefix: dst, Paths: []vpp.RoutePath{{SwIfIndex: m.SwIfIndex, Gateway: gw}}}
	if err := cli.AddRoute(ctx, route); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if err := cli.DeleteRoute(ctx, route); err != nil {
		return 0, err
	}
	if err := cli.DeleteMemif(ctx, m.SwIfIndex); err != nil {
		return 0, err
	}
	return took, cli.DeleteMemifSocket(ctx, sid)
}

// cold creates n memif masters in bridge domain 4, admin up, pipelined:
// socket filenames, then create+tag (CreateMemifs), then bridge, then up.
func cold(ctx context.Context, cli *vpp.Client, dir string, n int) (time.Duration, error) {
	specs := make([]vpp.MemifSpec, n)
	socks := make([]api.Message, n)
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("memif-r%05d-net1.sock", i))
		socks[i] = &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: uint32(i + 1), SocketFilename: path}
		specs[i] = vpp.MemifSpec{Owner: vppstate.Owner(path), SocketID: uint32(i + 1), Role: vpp.MemifMaster, Mode: vpp.MemifEthernet, MAC: mac(i)}
	}
	start := time.Now()
	if err := pipeline(ctx, cli, socks); err != nil {
		return 0, fmt.Errorf("memif sockets: %w", err)
	}
	ms, err := cli.CreateMemifs(ctx, specs)
	if err != nil {
		return 0, fmt.Errorf("create memifs: %w", err)
	}
	if _, err := cli.CreateBridgeDomain(ctx, vpp.DefaultBridgeDomain(4, "bridge")); err != nil {
		return 0, err
	}
	bridge := make([]api.Message, n)
	up := make([]api.Message, n)
	for i, m := range ms {
		idx := interface_types.InterfaceIndex(m.SwIfIndex)
		bridge[i] = &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: idx, BdID: 4, PortType: l2.L2_API_PORT_TYPE_NORMAL, Enable: true}
		up[i] = &interfaces.SwInterfaceSetFlags{SwIfIndex: idx, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP}
	}
	if err := pipeline(ctx, cli, bridge); err != nil {
		return 0, fmt.Errorf("bridge: %w", err)
	}
	if err := pipeline(ctx, cli, up); err != nil {
		return 0, fmt.Errorf("admin up: %w", err)
	}
	return time.Since(start), nil
}

func pipeline(ctx context.Context, cli *vpp.Client, reqs []api.Message) error {
	_, errs, err := cli.Pipeline(ctx, reqs)
	if err != nil {
		return err
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
