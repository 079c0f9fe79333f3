package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/store"
)

const warmup = 3

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// probe takes one floor sample at a time, so that floors can be measured
// up front and again interleaved with the measured samples: on a busy
// machine the load changes during a run, and a floor sample taken right
// before each measured sample sees the same load.
type probe struct {
	t       testing.TB
	writer  *clientv3.Client
	ch      clientv3.WatchChan
	seq     int
	noopBin string
	eps     []string
	ops     *exec.Cmd
	opsIn   io.Writer
	opsOut  *bufio.Scanner
}

const probeKey = "/bench/floor/put-watch"

func (b *bench) newProbe(t *testing.T) *probe {
	t.Helper()
	p := &probe{t: t, writer: connectStore(t, b.etcd.Endpoints).Etcd(), noopBin: b.noopBin, eps: b.etcd.Endpoints}
	reader := connectStore(t, b.etcd.Endpoints).Etcd()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p.ch = reader.Watch(ctx, probeKey, clientv3.WithCreatedNotify())
	if resp := <-p.ch; !resp.Created {
		t.Fatalf("watch not created: %v", resp.Err())
	}
	// The dataplane floor runs in a process of its own, as an agent does,
	// against a simulator of its own in this process, as the agents' are.
	sim, _ := startSim(t)
	p.ops = exec.Command(b.opsBin, "-socket", sim.Socket(), "-dir", harness.ShortTempDir(t), "-mode", "serve")
	var stderr strings.Builder
	p.ops.Stderr = &stderr
	in, err := p.ops.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.ops.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ops.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		_ = p.ops.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("vppops: %s", stderr.String())
		}
	})
	p.opsIn, p.opsOut = in, bufio.NewScanner(out)
	return p
}

// a: a put by one client until another client's watch delivers it.
func (p *probe) a() time.Duration {
	p.seq++
	val := strconv.Itoa(p.seq)
	start := time.Now()
	if _, err := p.writer.Put(context.Background(), probeKey, val); err != nil {
		p.t.Fatalf("put: %v", err)
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case resp, ok := <-p.ch:
			if !ok {
				p.t.Fatal("watch closed")
			}
			for _, ev := range resp.Events {
				if string(ev.Kv.Value) == val {
					return time.Since(start)
				}
			}
		case <-timeout:
			p.t.Fatalf("watch event %d not delivered", p.seq)
		}
	}
}

// b: one round of an agent's VPP calls ("host" or "container") in vppops.
func (p *probe) b(mode string) time.Duration {
	if _, err := fmt.Fprintln(p.opsIn, mode); err != nil {
		p.t.Fatalf("vppops: %v", err)
	}
	if !p.opsOut.Scan() {
		p.t.Fatalf("vppops ended: %v", p.opsOut.Err())
	}
	ns, err := strconv.ParseInt(p.opsOut.Text(), 10, 64)
	if err != nil {
		p.t.Fatalf("vppops said %q", p.opsOut.Text())
	}
	return time.Duration(ns)
}

// c: fork+exec of a static Go binary that does nothing.
func (p *probe) c() time.Duration {
	start := time.Now()
	if o, err := exec.Command(p.noopBin).CombinedOutput(); err != nil {
		p.t.Fatalf("noop: %v\n%s", err, o)
	}
	return time.Since(start)
}

// d: a fresh etcd client's dial (TCP, HTTP/2 set-up; blocking until the
// connection is up) and its close, the least a process that starts per
// call must do before its first request.
func (p *probe) d() time.Duration {
	start := time.Now()
	cli, err := clientv3.New(clientv3.Config{Endpoints: p.eps, DialTimeout: 10 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithBlock()}})
	if err != nil {
		p.t.Fatalf("dial etcd: %v", err)
	}
	took := time.Since(start)
	cli.Close()
	return took
}

// samples takes n floor samples after warm-up.
func samples(n int, f func() time.Duration) dist {
	var out []time.Duration
	for i := range n + warmup {
		if d := f(); i >= warmup {
			out = append(out, d)
		}
	}
	return newDist(out)
}

// pairs collects floor samples taken next to measured ones: per part
// (one of the probe's a, b, c, d, in the order they are summed), its
// samples.
type pairs struct {
	names []string
	parts map[string][]time.Duration
}

func (p *pairs) add(part string, d time.Duration) {
	if p.parts == nil {
		p.parts = map[string][]time.Duration{}
	}
	if _, ok := p.parts[part]; !ok {
		p.names = append(p.names, part)
	}
	p.parts[part] = append(p.parts[part], d)
}

// floor is the sum of the p50s (and of the p99s) of the parts taken; a
// part named twice in counts (the two etcd hops of an ADD) is added that
// many times.
func (p *pairs) floor(counts ...string) (p50, p99 float64) {
	for _, name := range counts {
		if xs := p.parts[name]; len(xs) > 0 {
			d := newDist(xs)
			p50 += ms(d.pct(50))
			p99 += ms(d.pct(99))
		}
	}
	return p50, p99
}

// p50 is one part's median in ms.
func (p *pairs) p50(part string) float64 { return ms(newDist(p.parts[part]).pct(50)) }

// floors measures, before anything else, (a) etcd put -> watch event at
// another, connected client, (b) the VPP calls of an ADD's host side and
// (b') of a container side straight through agent/vpp from their own
// process, (c) exec of a static Go binary that does nothing, (d) a fresh
// etcd client's dial; and, as floors of their own, host-local's exec.
func (b *bench) floors(t *testing.T) {
	n := b.cfg.samples
	p := b.probe
	b.res.floorRow("etcd_put_watch_floor", samples(n, p.a),
		"(a) a put by one connected client until another connected client's watch delivers it, raw clientv3")
	b.res.floorRow("etcd_dial_floor", samples(n, p.d),
		fmt.Sprintf("(d) a fresh raw clientv3 client's blocking dial (TCP + HTTP/2 set-up), measured apart from (a) because "+
			"a plugin exec'd per call must dial; store.Connect as the plugin calls it (its logger, the dial, a MemberList "+
			"check): p50 %s ms", num(ms(b.floorConnect(t, n).pct(50)))))

	sim, cli := startSim(t)
	bd := b.floorHostOps(t, sim, cli, n)
	b.res.floorRow("vpp_ops_floor", samples(n, func() time.Duration { return p.b("host") }),
		fmt.Sprintf("(b) an ADD's host-side VPP calls through agent/vpp from a process of their own (testdata/vppops) against vppsim, "+
			"one round trip after another (AddMemifSocket, CreateMemif, AddToBridge, SetAdminUp): %s per ADD; "+
			"the same calls from inside the simulator's process: p50 %s ms", bd.msgs, num(ms(bd.d.pct(50)))))
	bc := b.floorContainerOps(t, sim, cli, n)
	b.res.floorRow("vpp_ops_container_floor", samples(n, func() time.Duration { return p.b("container") }),
		fmt.Sprintf("(b') a container side's VPP calls through agent/vpp from their own process (AddMemifSocket, CreateMemif, "+
			"InterfaceAddresses, AddAddress, SetAdminUp, AddRoute): %s per interface; from inside the simulator's process: p50 %s ms",
			bc.msgs, num(ms(bc.d.pct(50)))))
	b.hostFloorMsgs, b.ctrFloorMsgs = bd.perOp, bc.perOp

	b.res.floorRow("exec_floor", samples(n, p.c),
		"(c) fork+exec of a static Go binary that does nothing (testdata/noop): the least any exec'd plugin costs")
	b.res.floorRow("exec_host_local", samples(n, func() time.Duration { return execVersion(t, b.hostLocal) }),
		"fork+exec of the real host-local IPAM plugin answering CNI VERSION: what every plugin that uses IPAM pays on top "+
			"of its own exec; not part of any sum")
	if b.cfg.runs("init_host_local", "init_userspace", "init_uspace-agent", "exec_userspace") {
		b.binaries(t)
	}
}

// execVersion times one fork+exec of a CNI plugin answering VERSION.
func execVersion(t testing.TB, bin string) time.Duration {
	cmd := exec.Command(bin)
	cmd.Env = append(cmd.Environ(), "CNI_COMMAND=VERSION")
	cmd.Stdin = strings.NewReader(`{"cniVersion":"1.0.0"}`)
	start := time.Now()
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s VERSION: %v\n%s", bin, err, o)
	}
	return time.Since(start)
}

func (b *bench) floorConnect(t *testing.T, n int) dist {
	t.Helper()
	var out []time.Duration
	for i := range n + warmup {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := store.Connect(ctx, store.Config{Endpoints: b.etcd.Endpoints, DialTimeout: 5 * time.Second})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		if i >= warmup {
			out = append(out, time.Since(start))
		}
	}
	return newDist(out)
}

// startSim starts a VPP simulator and a connected driver client.
func startSim(t testing.TB) (*vppsim.Sim, *vpp.Client) {
	t.Helper()
	dir := harness.ShortTempDir(t)
	sim, err := vppsim.Start(vppsim.Options{Socket: filepath.Join(dir, "api.sock"), RuntimeDir: dir})
	if err != nil {
		t.Fatalf("start vppsim: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	cli := dialVPP(t, sim.Socket())
	return sim, cli
}

func dialVPP(t testing.TB, socket string) *vpp.Client {
	t.Helper()
	cli := vpp.Dial(vpp.Config{Socket: socket, ClientName: "uspace-bench", Logger: quiet})
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cli.WaitConnected(ctx); err != nil {
		t.Fatalf("connect to vppsim: %v", err)
	}
	return cli
}

// msgCounts is a simulator's request count per message name.
type msgCounts map[string]uint64

func countMsgs(sim *vppsim.Sim) msgCounts {
	out := msgCounts{}
	for _, nameCRC := range sim.Messages() {
		name := nameCRC
		if i := strings.LastIndexByte(nameCRC, '_'); i > 0 {
			name = nameCRC[:i]
		}
		out[name] = sim.MessageCount(name)
	}
	return out
}

// background messages that are not part of any operation: the driver's
// health ping and connection set-up.
var background = map[string]bool{"control_ping": true, "show_version": true, "sockclnt_create": true,
	"sockclnt_delete": true, "want_interface_events": true}

func (m msgCounts) sub(o msgCounts) msgCounts {
	out := msgCounts{}
	for k, v := range m {
		if d := v - o[k]; d > 0 && !background[k] {
			out[k] = d
		}
	}
	return out
}

func (m msgCounts) add(o msgCounts) {
	for k, v := range o {
		m[k] += v
	}
}

func (m msgCounts) total() uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// writes counts the messages that change VPP (not dumps).
func (m msgCounts) writes() uint64 {
	var n uint64
	for k, v := range m {
		if !strings.HasSuffix(k, "_dump") {
			n += v
		}
	}
	return n
}

// per formats the counts divided by n, e.g. "7 messages (memif_create_v2 1, ...)".
func (m msgCounts) per(n int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, num(float64(m[k])/float64(n))))
	}
	return fmt.Sprintf("%s VPP messages (%s)", num(float64(m.total())/float64(n)), strings.Join(parts, ", "))
}

type opsFloor struct {
	d     dist
	msgs  string
	perOp float64
}

func testMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0xbe, 0x0c, byte(i >> 16), byte(i >> 8), byte(i)}
}

// floorHostOps issues what the host agent issues for one new memif in a
// bridge domain that exists, one call after another (each needs the
// previous one's sw_if_index).
func (b *bench) floorHostOps(t *testing.T, sim *vppsim.Sim, cli *vpp.Client, n int) opsFloor {
	t.Helper()
	ctx := context.Background()
	dir := harness.ShortTempDir(t)
	if _, err := cli.CreateBridgeDomain(ctx, vpp.DefaultBridgeDomain(4, "bridge")); err != nil {
		t.Fatal(err)
	}
	var out []time.Duration
	msgs := msgCounts{}
	for i := range n + warmup {
		sid := uint32(1000 + i)
		path := filepath.Join(dir, fmt.Sprintf("memif-%d.sock", i))
		before := countMsgs(sim)
		start := time.Now()
		if err := cli.AddMemifSocket(ctx, sid, path); err != nil {
			t.Fatal(err)
		}
		m, err := cli.CreateMemif(ctx, vpp.MemifSpec{Owner: vppstate.Owner(path), SocketID: sid, Role: vpp.MemifMaster,
			Mode: vpp.MemifEthernet, MAC: testMAC(i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := cli.AddToBridge(ctx, m.SwIfIndex, 4, 0); err != nil {
			t.Fatal(err)
		}
		if err := cli.SetAdminUp(ctx, m.SwIfIndex, true); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if i >= warmup {
			out = append(out, took)
			msgs.add(countMsgs(sim).sub(before))
		}
		if err := cli.RemoveFromBridge(ctx, m.SwIfIndex); err != nil {
			t.Fatal(err)
		}
		if err := cli.DeleteMemif(ctx, m.SwIfIndex); err != nil {
			t.Fatal(err)
		}
		if err := cli.DeleteMemifSocket(ctx, sid); err != nil {
			t.Fatal(err)
		}
	}
	return opsFloor{d: newDist(out), msgs: msgs.per(n), perOp: float64(msgs.total()) / float64(n)}
}

// floorContainerOps issues what the container agent issues for one new
// memif slave with an address and a route.
func (b *bench) floorContainerOps(t *testing.T, sim *vppsim.Sim, cli *vpp.Client, n int) opsFloor {
	t.Helper()
	ctx := context.Background()
	dir := harness.ShortTempDir(t)
	var out []time.Duration
	msgs := msgCounts{}
	for i := range n + warmup {
		sid := uint32(5000 + i)
		path := filepath.Join(dir, fmt.Sprintf("memif-%d.sock", i))
		addr := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.2/24", 100+i/256, i%256))
		dst := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 200+i/256, i%256))
		gw := netip.MustParseAddr(fmt.Sprintf("10.%d.%d.1", 100+i/256, i%256))
		before := countMsgs(sim)
		start := time.Now()
		if err := cli.AddMemifSocket(ctx, sid, path); err != nil {
			t.Fatal(err)
		}
		m, err := cli.CreateMemif(ctx, vpp.MemifSpec{Owner: vppstate.Owner(path), SocketID: sid, Role: vpp.MemifSlave,
			Mode: vpp.MemifEthernet, MAC: testMAC(i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.InterfaceAddresses(ctx, m.SwIfIndex); err != nil {
			t.Fatal(err)
		}
		if err := cli.AddAddress(ctx, m.SwIfIndex, addr); err != nil {
			t.Fatal(err)
		}
		if err := cli.SetAdminUp(ctx, m.SwIfIndex, true); err != nil {
			t.Fatal(err)
		}
		route := vpp.Route{Prefix: dst, Paths: []vpp.RoutePath{{SwIfIndex: m.SwIfIndex, Gateway: gw}}}
		if err := cli.AddRoute(ctx, route); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if i >= warmup {
			out = append(out, took)
			msgs.add(countMsgs(sim).sub(before))
		}
		if err := cli.DeleteRoute(ctx, route); err != nil {
			t.Fatal(err)
		}
		if err := cli.DeleteMemif(ctx, m.SwIfIndex); err != nil {
			t.Fatal(err)
		}
		if err := cli.DeleteMemifSocket(ctx, sid); err != nil {
			t.Fatal(err)
		}
	}
	return opsFloor{d: newDist(out), msgs: msgs.per(n), perOp: float64(msgs.total()) / float64(n)}
}

// vppOpsAt runs testdata/vppops against the VPP API socket given, a
// simulator's or a real VPP's, and returns its timings.
func (b *bench) vppOpsAt(t *testing.T, socket, mode string, n int) dist {
	t.Helper()
	dir := harness.ShortTempDir(t)
	cmd := exec.Command(b.opsBin, "-socket", socket, "-dir", dir, "-mode", mode, "-n", strconv.Itoa(n), "-warmup", strconv.Itoa(warmup))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("vppops -mode %s: %v\n%s", mode, err, stderr.String())
	}
	var d []time.Duration
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("vppops output %q: %v", out, err)
	}
	return newDist(d)
}

// floorColdCreate creates n memif masters in one bridge domain on an empty
// simulator, pipelined, from testdata/vppops: what a cold resync has to do
// at the least.
func (b *bench) floorColdCreate(t *testing.T, sim *vppsim.Sim, n int) time.Duration {
	t.Helper()
	d := b.vppOpsAt(t, sim.Socket(), "cold", n)
	if st := sim.Snapshot(); len(st.Memifs) != n {
		t.Fatalf("cold floor: %d memifs in vppsim, want %d", len(st.Memifs), n)
	}
	return d.pct(50)
}
