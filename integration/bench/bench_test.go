package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
)

// config sizes one run.
type config struct {
	mode string
	// samples per latency distribution (after warm-up); binSamples per
	// binary's init and exec.
	samples, binSamples int
	// idleWindow is how long idle agents are watched for etcd reads (a
	// minute in full mode: the container agent's identity check runs once
	// a minute); pollWindow how long each (time-scaled) poll loop runs.
	idleWindow, pollWindow time.Duration
	// tpDuration is each one-host throughput run's (and its floor's)
	// length, at every concurrency of throughputConcurrency.
	tpDuration time.Duration
	// intents is the resync size.
	intents int
	// costAdds are the sequential ADDs whose etcd traffic is counted;
	// bigAdds the ADDs timed on the host holding all the intents.
	costAdds, bigAdds int
	// real runs the rows on the real dataplanes: realSamples per latency
	// distribution, realIntents the size of the real-VPP resync.
	real                     bool
	realSamples, realIntents int
	// cluster: the 10-host, 3-member run.
	cluster         bool
	clusterHosts    int
	clusterDuration time.Duration
	clusterWorkers  int
	// rows (USPACE_BENCH_ROWS, a regular expression) keeps the steps
	// that make a matching row, with what they need; nil keeps all.
	rows *regexp.Regexp
}

func loadConfig() config {
	full := config{mode: "full", samples: 200, binSamples: 30, real: true, realSamples: 30, realIntents: 1000, idleWindow: time.Minute, pollWindow: 3 * time.Second,
		tpDuration: 8 * time.Second, intents: 10000, costAdds: 50, bigAdds: 10,
		cluster: true, clusterHosts: 10, clusterDuration: 15 * time.Second, clusterWorkers: 20}
	quick := config{mode: "quick", samples: 15, binSamples: 4, realSamples: 3, realIntents: 20, idleWindow: 2 * time.Second, pollWindow: 500 * time.Millisecond,
		tpDuration: time.Second, intents: 200, costAdds: 5, bigAdds: 3}
	c := quick
	if v := os.Getenv("USPACE_BENCH"); (v == "full" || v == "1") && os.Getenv("BENCH_QUICK") == "" {
		c = full
	}
	// Overrides for experiments.
	if v, err := strconv.Atoi(os.Getenv("USPACE_BENCH_INTENTS")); err == nil && v > 0 {
		c.intents = v
	}
	if v, err := strconv.Atoi(os.Getenv("USPACE_BENCH_SAMPLES")); err == nil && v > 0 {
		c.samples = v
	}
	if os.Getenv("USPACE_BENCH_CLUSTER") == "0" {
		c.cluster = false
	}
	if os.Getenv("USPACE_BENCH_REAL") == "1" {
		c.real = true
	}
	if v := os.Getenv("USPACE_BENCH_ROWS"); v != "" {
		c.rows = regexp.MustCompile(v)
	}
	return c
}

// runs says whether a step that makes these rows (their full names) is to
// run: every step does unless USPACE_BENCH_ROWS is set, then only those
// making a row it matches (the up-front floors run in any case).
func (c config) runs(rows ...string) bool {
	if c.rows == nil {
		return true
	}
	for _, r := range rows {
		if c.rows.MatchString(r) {
			return true
		}
	}
	return false
}

func (c config) intentsLabel() string {
	if c.intents%1000 == 0 {
		return fmt.Sprintf("%dk", c.intents/1000)
	}
	return strconv.Itoa(c.intents)
}

func TestMain(m *testing.M) {
	// The plugin reads /etc/uspace/uspace.conf unless USPACE_CONFIG says
	// otherwise: keep the machine's own config out of the benchmark.
	dir, err := os.MkdirTemp("", "uspace-bench-conf-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	conf := filepath.Join(dir, "uspace.conf")
	if err := os.WriteFile(conf, []byte("{}"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("USPACE_CONFIG", conf)
	os.Unsetenv("USPACE_HOST")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// bench is one run's shared state.
type bench struct {
	cfg  config
	res  *Results
	etcd *etcdRun
	// noopBin is the exec floor's binary, opsBin the dataplane floor's;
	// cniDir holds the `userspace` plugin, hostLocal is the real host-local
	// plugin; netns is the network namespace containers are added into.
	noopBin   string
	opsBin    string
	cniDir    string
	hostLocal string
	netns     string
	// probe takes floor samples (a, b, b', c, d) on demand.
	probe *probe
	// VPP messages per operation of the floors (b) and (b').
	hostFloorMsgs, ctrFloorMsgs float64
	// idleFootprint is bench-1's agent with no interface.
	idleFootprint *agentFootprint
	// idleRangePerSec is the idle agents' etcd reads per second.
	idleRangePerSec float64
	// costPerAdd is etcd's traffic per ADD on an empty host.
	costPerAdd etcdCounts
	// watchConv is the container convergence distribution, convFloor the
	// floor samples taken next to it.
	watchConv dist
	convFloor *pairs
	// agentStartEmpty is a host agent's start with nothing to do, until
	// converged; agentRegEmpty until it registered.
	agentStartEmpty, agentRegEmpty time.Duration
}

// floor returns a floor row's p50 and p99 (0 when it is missing).
func (b *bench) floor(names ...string) (p50, p99 float64) {
	for _, n := range names {
		if r := b.res.row(n); r != nil {
			p50 += r.P50
			p99 += r.P99
		} else {
			return 0, 0
		}
	}
	return p50, p99
}

// upfront is the sum of the p50s of floor rows measured up front.
func (b *bench) upfront(names ...string) float64 {
	p50, _ := b.floor(names...)
	return p50
}

func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark: skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("benchmark: needs root for network namespaces")
	}
	cfg := loadConfig()
	b := &bench{cfg: cfg, res: &Results{Mode: cfg.mode, Started: time.Now().UTC(), Machine: machineFacts(), Notes: []string{},
		Config: map[string]any{"samples": cfg.samples, "intents": cfg.intents, "idleWindow": cfg.idleWindow.String(),
			"pollWindow": cfg.pollWindow.String(), "throughputConcurrency": throughputConcurrency, "throughputDuration": cfg.tpDuration.String(),
			"cluster": cfg.cluster, "clusterHosts": cfg.clusterHosts, "clusterWorkers": cfg.clusterWorkers,
			"realSamples": cfg.realSamples, "realIntents": cfg.realIntents}}}
	b.res.note("etcd is the real etcd binary (one process per member, data on disk, fsync on), its request and byte counts from its own /metrics; " +
		"agents and plugins are the built binaries as processes; VPP is vppsim over its real socket protocol, running in the test process, " +
		"except in the real_* rows, which run on the real VPP 25.02 and SPDK 24.09 (integration/realdp)")
	b.res.note("floors: (a) etcd put -> watch between two connected clients, (b) and (b') the host and container sides' VPP calls from a " +
		"process of their own, (c) exec of a static Go binary that does nothing, (d) a fresh etcd client's dial; the up-front floor rows are " +
		"measured first; rows compared with sums of them (c+d+2a+b, d+2a+b, 2a+b') use floor samples taken right before each measured " +
		"sample (interleaved), so a load change during the run hits floor and measurement alike; throughput rows are compared with libcni " +
		"ADD+DEL of a chain that only runs host-local, at the same concurrency, measured right before them")
	b.res.note("the machine is shared: other jobs (builds and tests of other engineers) ran during the run, so the load average moved; " +
		"interleaved floors take that into account, single-shot figures (resync, throughput) do not")
	b.res.note("latencies are nearest-rank percentiles; with n = 15 or 20 (quick mode) p99 is the maximum")
	t.Logf("benchmark in %s mode: %d samples, %d intents, load %s", cfg.mode, cfg.samples, cfg.intents, loadAvg())
	start := time.Now()

	bins := buildTestdata(t, "noop", "vppops")
	b.noopBin, b.opsBin = bins[0], bins[1]
	b.cniDir = filepath.Dir(binaries.Path(t, "userspace"))
	b.hostLocal = binaries.Path(t, "host-local")
	binaries.Path(t, "uspace-agent")
	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() { netns.Close(); _ = testutils.UnmountNS(netns) })
	b.netns = netns.Path()
	b.etcd = startEtcd(t, 1)
	b.probe = b.newProbe(t)

	// Floors first, in the same run and on the same etcd.
	t.Run("floors", b.floors)
	t.Run("host", b.hostPhase)
	if l := cfg.intentsLabel(); cfg.runs("resync_cold_floor_"+l, "resync_initial_"+l, "resync_adopt_floor_"+l, "resync_adopt_"+l,
		"resync_adopt_vpp_writes", "resync_cold_"+l, "cost_agent_rss_"+l, "cost_agent_goroutines_"+l, "cni_add_at_"+l, "cost_add_etcd_bytes_at_"+l) {
		t.Run("resync", b.resyncPhase)
	}
	if cfg.runs("cross_host_tunnel_up", "cross_host_tunnel_down") {
		t.Run("cross-host", b.crossHostPhase)
	}
	if cfg.runs("etcd_watchers_direct_1", "etcd_watchers_endpoint_1", "container_convergence_endpoint") {
		t.Run("endpoint", b.endpointPhase)
	}
	if cfg.mode == "full" {
		if cfg.runs("container_agent_revoked_noticed") {
			t.Run("identity", b.identityPhase)
		}
	} else {
		t.Log("identity: not in quick mode (it waits for the container agent's check, up to a minute); integration/containeragent TestExitsWhenItsEtcdUserIsDeleted runs the same with a 3 s interval")
	}
	if cfg.cluster && cfg.runs(fmt.Sprintf("throughput_%d_hosts", cfg.clusterHosts)) {
		t.Run("cluster", b.clusterPhase)
	}
	if cfg.real {
		if l := strconv.Itoa(cfg.realIntents); cfg.runs("real_vpp_ops_floor", "real_vpp_ops_container_floor", "real_cni_add",
			"real_memif_host", "real_vhost_host", "real_memif_container", "real_vhost_container",
			"real_resync_cold_floor_"+l, "real_resync_cold_"+l, "real_resync_adopt_floor_"+l, "real_resync_adopt_"+l) {
			t.Run("real-vpp", b.realVPPPhase)
		}
		if cfg.runs("real_spdk_ops_floor", "real_volume_blk_ready") {
			t.Run("real-spdk", b.realSPDKPhase)
		}
		if cfg.runs("kube_pod_ready_cluster", "kube_pod_ready_memif") {
			t.Run("kubernetes", b.kubePhase)
		}
	} else {
		t.Log("real dataplanes and the Kubernetes node: not in quick mode (their starts alone take half a minute; the integration/realdp and integration/kube tiers run the same flows); USPACE_BENCH_REAL=1 adds them")
	}

	b.res.Machine["loadEnd"] = loadAvg()
	b.res.Took = time.Since(start).Round(time.Second).String()
	fmt.Println()
	fmt.Println(b.res.Markdown())
	name := "bench-results"
	if cfg.mode != "full" {
		name = "bench-results-quick"
	}
	if path, err := b.res.write(name); err != nil {
		t.Errorf("write results: %v", err)
	} else {
		t.Logf("results written to %s", path)
	}

	want := []string{"etcd_put_watch_floor", "etcd_dial_floor", "vpp_ops_floor", "vpp_ops_container_floor", "exec_floor",
		"exec_host_local", "init_host_local", "exec_userspace",
		"cni_add", "cni_add_inprocess", "container_convergence",
		"poll_baseline_20s", "poll_baseline_3s", "poll_baseline_1s",
		"idle_etcd_reads_agents", "idle_etcd_reads_poll_3s",
		"throughput_c1", "throughput_c4", "throughput_c16",
		"cost_add_etcd_requests", "cost_del_etcd_requests", "cost_add_etcd_writes", "cost_add_etcd_bytes", "cost_txn_max_ops", "cost_txn_max_bytes",
		"resync_adopt_" + cfg.intentsLabel(), "resync_adopt_vpp_writes", "resync_cold_" + cfg.intentsLabel(),
		"cost_agent_rss_" + cfg.intentsLabel(), "cost_agent_goroutines_" + cfg.intentsLabel(),
		"cross_host_tunnel_up", "cross_host_tunnel_down", "container_convergence_endpoint"}
	for _, n := range endpointCounts {
		want = append(want, fmt.Sprintf("etcd_watchers_direct_%d", n), fmt.Sprintf("etcd_watchers_endpoint_%d", n))
	}
	if cfg.cluster {
		want = append(want, "throughput_10_hosts")
	}
	if cfg.mode == "full" {
		want = append(want, "container_agent_revoked_noticed")
	}
	cmds, err := os.ReadDir(filepath.Join(moduleRoot(), "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		want = append(want, "init_"+c.Name())
	}
	if cfg.rows != nil {
		want = slices.DeleteFunc(want, func(r string) bool { return !cfg.rows.MatchString(r) })
	}
	for _, bad := range b.res.sanity(want) {
		t.Error(bad)
	}
}

// buildTestdata builds the floors' static binaries from testdata.
func buildTestdata(t *testing.T, names ...string) []string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-trimpath", "-o", dir + "/"}
	var out []string
	for _, n := range names {
		args = append(args, "./integration/bench/testdata/"+n)
		out = append(out, filepath.Join(dir, n))
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %v: %v\n%s", names, err, b)
	}
	return out
}

// startHost starts a host (vppsim, spdksim, agent) on the run's etcd.
func (b *bench) startHost(t *testing.T, name string) *harness.Host {
	t.Helper()
	return b.etcd.StartHost(t, name)
}
