package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/skel"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/cni"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// cniEnv invokes the `userspace` plugin for one host: through libcni (the
// built binary, exec'd the way runtimes do) or in-process (package cni's
// ADD and DEL, no exec).
type cniEnv struct {
	host   *harness.Host
	netns  string
	cni    *libcni.CNIConfig
	list   *libcni.NetworkConfigList
	conf   []byte
	inproc skel.CNIFuncs
}

func (b *bench) newCNI(t testing.TB, e *etcdRun, h *harness.Host) *cniEnv {
	t.Helper()
	m := map[string]any{
		"cniVersion": "1.0.0", "type": "userspace", "name": "bench-net",
		"host": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "bridge",
			"memif": map[string]any{"role": "master", "mode": "ethernet"}, "bridge": map[string]any{"bridgeName": "4"}},
		"container": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "interface",
			"memif": map[string]any{"role": "slave", "mode": "ethernet"}},
		"sharedDir": h.SharedDir,
		"uspace":    map[string]any{"etcd": map[string]any{"endpoints": e.Endpoints}, "host": h.Name, "addTimeout": "30s", "delTimeout": "30s"},
	}
	conf, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "90-userspace.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := libcni.LoadNetworkConf(dir, "bench-net")
	if err != nil {
		t.Fatalf("libcni cannot load %s: %v", conf, err)
	}
	return &cniEnv{host: h, netns: b.netns, cni: libcni.NewCNIConfigWithCacheDir([]string{b.cniDir}, t.TempDir(), nil),
		list: list, conf: conf, inproc: cni.Funcs()}
}

func (c *cniEnv) rt(id string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: c.netns, IfName: "net1",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "bench"}, {"K8S_POD_NAME", "pod-" + id}}}
}

func (c *cniEnv) add(id string) error {
	_, err := c.cni.AddNetworkList(context.Background(), c.list, c.rt(id))
	return err
}

func (c *cniEnv) del(id string) error {
	return c.cni.DelNetworkList(context.Background(), c.list, c.rt(id))
}

func (c *cniEnv) args(id string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: id, Netns: c.netns, IfName: "net1",
		Args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-" + id, StdinData: c.conf}
}

// addInProcess runs package cni's ADD in this process; the result it
// prints goes to /dev/null.
func (c *cniEnv) addInProcess(id string) error {
	return discardStdout(func() error { return c.inproc.Add(c.args(id)) })
}

func (c *cniEnv) delInProcess(id string) error {
	return discardStdout(func() error { return c.inproc.Del(c.args(id)) })
}

func discardStdout(f func() error) error {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	old := os.Stdout
	os.Stdout = devnull
	defer func() { os.Stdout = old }()
	return f()
}

// agentMetrics scrapes a host agent's /metrics.
func agentMetrics(t testing.TB, h *harness.Host) metrics {
	t.Helper()
	return scrape(t, "http://"+h.MetricsAddr+"/metrics")
}

// agentFootprint is an agent's RSS and goroutines.
type agentFootprint struct {
	rssMiB, hwmMiB, goroutines float64
	// From the Go runtime (MiB): heap in use, heap idle but not yet
	// returned to the OS, all memory obtained from the OS.
	heapInuse, heapIdleKept, sys float64
}

func footprint(t testing.TB, h *harness.Host) agentFootprint {
	t.Helper()
	m := agentMetrics(t, h)
	const mib = 1 << 20
	f := agentFootprint{goroutines: m.sum("go_goroutines"), rssMiB: m.sum("process_resident_memory_bytes") / mib,
		heapInuse:    m.sum("go_memstats_heap_inuse_bytes") / mib,
		heapIdleKept: (m.sum("go_memstats_heap_idle_bytes") - m.sum("go_memstats_heap_released_bytes")) / mib,
		sys:          m.sum("go_memstats_sys_bytes") / mib}
	if _, rss, hwm, err := procStatus(h.MetricsAddr); err == nil {
		f.rssMiB, f.hwmMiB = rss/1024, hwm/1024
	}
	return f
}

// hostPhase: one host with its agent, a container agent, the CNI plugin.
func (b *bench) hostPhase(t *testing.T) {
	h := b.startHost(t, "bench-1")
	ctrShared := harness.ShortTempDir(t)
	ctr := b.etcd.StartContainer(t, h.Name, ctrShared, []string{"--container-id", convContainer})
	c := b.newCNI(t, b.etcd, h)

	// The fixed cost of an agent start: nothing to reconcile but the sweep.
	if err := h.Agent.Stop(10 * time.Second); err != nil {
		t.Logf("agent stop: %v", err)
	}
	start := time.Now()
	h.RestartAgent(t)
	b.agentRegEmpty = time.Since(start)
	waitConverged(t, h, 0, time.Minute)
	b.agentStartEmpty = time.Since(start)
	idle := footprint(t, h)
	b.idleFootprint = &idle

	if b.cfg.runs("idle_etcd_reads_agents") {
		b.idleReads(t, h, ctr)
	}

	// A resident attachment keeps bridge domain 4 alive, as other pods do
	// on a real node: otherwise every sample's DEL would remove the domain
	// and the next ADD re-create it.
	if err := c.add("bench-resident"); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	// First, while no earlier DEL has left the host agent clean-up work
	// due later (see costPhase).
	if b.cfg.runs("cost_add_etcd_requests", "cost_add_etcd_writes", "cost_add_etcd_bytes", "cost_del_etcd_requests",
		"cost_txn_max_ops", "cost_txn_max_bytes") {
		b.costPhase(t, c)
	}

	// CNI ADD through libcni, exec'ing the built plugin.
	if b.cfg.runs("cni_add") {
		b.cniAdd(t, c, h)
	}
	if b.cfg.runs("cni_add_inprocess") {
		b.cniAddInProcess(t, c, h)
	}
	if b.cfg.runs("container_convergence") {
		b.convergence(t, ctr)
	}
	if b.cfg.runs("poll_baseline_20s", "poll_baseline_3s", "poll_baseline_1s", "idle_etcd_reads_poll_3s") {
		b.pollBaseline(t)
	}
	for _, w := range throughputConcurrency {
		if name := fmt.Sprintf("throughput_c%d", w); b.cfg.runs(name) {
			b.throughput(t, name, []*cniEnv{c}, w, b.cfg.tpDuration, b.etcd, w == throughputConcurrency[len(throughputConcurrency)-1])
		}
	}
}

// cniAdd times ADDs through libcni, exec'ing the built plugin.
func (b *bench) cniAdd(t *testing.T, c *cniEnv, h *harness.Host) {
	adds, pr, split := b.sampleAdds(t, c, h, "bench-add", c.add, c.del, true)
	f50, f99 := pr.floor(addFloor...)
	row := b.res.latencyRow("cni_add", adds, f50, f99, addFloorOf)
	row.target("p50 <= 2x, p99 <= 4x", row.Ratio != nil && *row.Ratio <= 2 && row.RatioP99 != nil && *row.RatioP99 <= 4)
	row.note("libcni AddNetworkList exec'ing the built `userspace` into a netns, no IPAM, the host agent converging vppsim; "+
		"floor: exec of a static binary that does nothing (c) + a fresh etcd dial (d) + the intent's put->watch to the agent and "+
		"the status's put->watch back (2a) + the host-side VPP calls (b), interleaved (one sample of each before each ADD; "+
		"the up-front floors give %s ms); %s", num(b.upfront("exec_floor", "etcd_dial_floor", "etcd_put_watch_floor", "etcd_put_watch_floor", "vpp_ops_floor")), split)
}

// cniAddInProcess times the same ADD in-process: no exec.
func (b *bench) cniAddInProcess(t *testing.T, c *cniEnv, h *harness.Host) {
	inproc, pr, split := b.sampleAdds(t, c, h, "bench-inproc", c.addInProcess, c.delInProcess, false)
	f50, f99 := pr.floor(addFloor[1:]...)
	b.res.latencyRow("cni_add_inprocess", inproc, f50, f99, addFloorOf[2:]).
		note("package cni's ADD called in the test process (skel.CNIFuncs.Add): the same etcd and agent work without fork/exec, "+
			"dialing etcd per ADD as the plugin does; floors interleaved; %s", split)
}

// addFloor names the parts of an ADD's floor (probe samples summed, the
// put->watch twice: the intent to the agent, the status back to the
// plugin); addFloorOf says it in the table. Without exec it is addFloor[1:].
var addFloor = []string{"c", "d", "a", "a", "b"}

const addFloorOf = "c+d+2a+b"

// addFloorSample takes one sample of each part of an ADD's floor.
func (b *bench) addFloorSample(pr *pairs, withExec bool) {
	pr.add("a", b.probe.a())
	pr.add("b", b.probe.b("host"))
	pr.add("d", b.probe.d())
	if withExec {
		pr.add("c", b.probe.c())
	}
}

// sampleAdds times ADDs (each followed by an untimed DEL) and splits
// them at the moment the host agent stamped the status it wrote
// (UpdatedAt, same clock): before it, the plugin's start, its etcd reads
// and write and the agent's reconcile; after it, the status write, the
// plugin's watch and its exit.
func (b *bench) sampleAdds(t *testing.T, c *cniEnv, h *harness.Host, prefix string, add, del func(string) error, withExec bool) (dist, *pairs, string) {
	t.Helper()
	var lat, before, after []time.Duration
	// split[i] is sample i's time before and after the stamp (-1: no status).
	var split [][2]time.Duration
	pr := &pairs{}
	msgs := msgCounts{}
	m0 := agentMetrics(t, h)
	e0 := scrape(t, b.etcd.metricsURLs...)
	for i := range b.cfg.samples + warmup {
		id := fmt.Sprintf("%s-%04d", prefix, i)
		if i >= warmup {
			b.addFloorSample(pr, withExec)
		}
		vb := countMsgs(h.VPP)
		start := time.Now()
		if err := add(id); err != nil {
			t.Fatalf("ADD %s: %v", id, err)
		}
		took := time.Since(start)
		if i >= warmup {
			lat = append(lat, took)
			msgs.add(countMsgs(h.VPP).sub(vb))
			sp := [2]time.Duration{-1, -1}
			if at, err := statusStamp(b.etcd.Store, schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: h.Name, Container: id, Interface: "net1"})); err == nil {
				sp = [2]time.Duration{at.Sub(start), took - at.Sub(start)}
				before, after = append(before, sp[0]), append(after, sp[1])
			}
			split = append(split, sp)
		}
		if err := del(id); err != nil {
			t.Fatalf("DEL %s: %v", id, err)
		}
	}
	m1 := agentMetrics(t, h)
	e1 := scrape(t, b.etcd.metricsURLs...)
	// Reconciles of the ADDs and of the DELs alike.
	recs := m1.sum("uspace_reconcile_duration_seconds_count", "controller", "interfaces") - m0.sum("uspace_reconcile_duration_seconds_count", "controller", "interfaces")
	recSum := m1.sum("uspace_reconcile_duration_seconds_sum", "controller", "interfaces") - m0.sum("uspace_reconcile_duration_seconds_sum", "controller", "interfaces")
	n := b.cfg.samples
	p50 := histBound(m0, m1, "uspace_reconcile_duration_seconds", 0.5, "controller", "interfaces")
	conv := histBound(m0, m1, "uspace_convergence_seconds", 0.5, "controller", "interfaces")
	return newDist(lat), pr, fmt.Sprintf("split at the agent's status stamp: start to stamp p50 %s ms (mean %s), stamp to return p50 %s ms (mean %s); "+
		"the agent's reconciles (ADDs and DELs, VPP calls and the status write) took %s ms on average, p50 <= %s ms, "+
		"and from event to converged p50 <= %s ms (its /metrics histograms); it issued %s per ADD (floor b: %s); %s",
		num(ms(newDist(before).pct(50))), num(ms(newDist(before).mean())), num(ms(newDist(after).pct(50))), num(ms(newDist(after).mean())),
		num(recSum/max(recs, 1)*1000), num(p50*1000), num(conv*1000), msgs.per(n), num(b.hostFloorMsgs),
		slowest(lat, split, pr, withExec, e0, e1))
}

// slowest says where the slowest samples spent their time, so a p99 set
// by a stall shows what stalled: each one's split at the agent's status
// stamp (before it: the plugin's start, its transaction, the agent's
// reconcile; after it: the status write, the plugin's watch and exit),
// the floor sample taken right before it (a stall of the whole machine
// shows there too), and etcd's fsyncs and commits slower than 64 ms
// during the samples (its own histograms).
func slowest(lat []time.Duration, split [][2]time.Duration, pr *pairs, withExec bool, e0, e1 metrics) string {
	idx := make([]int, len(lat))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int { return cmp.Compare(lat[y], lat[x]) })
	parts := addFloor
	if !withExec {
		parts = addFloor[1:]
	}
	var out []string
	for _, i := range idx[:min(3, len(idx))] {
		var floor time.Duration
		for _, p := range parts {
			if xs := pr.parts[p]; i < len(xs) {
				floor += xs[i]
			}
		}
		s := fmt.Sprintf("%s ms (before the stamp %s, after %s; its floor sample %s)", num(ms(lat[i])),
			num(ms(split[i][0])), num(ms(split[i][1])), num(ms(floor)))
		if split[i][0] < 0 {
			s = fmt.Sprintf("%s ms (no status read back; its floor sample %s)", num(ms(lat[i])), num(ms(floor)))
		}
		out = append(out, s)
	}
	slow := func(name string) string {
		count := func(m metrics) float64 { return m.sum(name + "_count") }
		le := func(m metrics) float64 { return m.sum(name+"_bucket", "le", "0.064") }
		return num((count(e1) - le(e1)) - (count(e0) - le(e0)))
	}
	return fmt.Sprintf("slowest samples: %s; etcd fsyncs of its WAL over 64 ms during them: %s, backend commits over 64 ms: %s",
		strings.Join(out, ", "), slow("etcd_disk_wal_fsync_duration_seconds"), slow("etcd_disk_backend_commit_duration_seconds"))
}

// statusStamp reads the UpdatedAt of a status.
func statusStamp(st *store.Client, key string) (time.Time, error) {
	kv, err := st.Get(context.Background(), key)
	if err != nil {
		return time.Time{}, err
	}
	if kv == nil {
		return time.Time{}, fmt.Errorf("%s: no status", key)
	}
	s, err := schema.DecodeAs[schema.InterfaceStatus](kv.Value)
	if err != nil {
		return time.Time{}, err
	}
	return s.UpdatedAt, nil
}

// costPhase counts etcd's requests and bytes for sequential ADDs, then
// DELs, with nothing else going on but idle agents, then, apart, what the
// host agent does later for the DELs: once a container's last interface
// and meta are gone it waits containerStatusGrace (agent/host, 5 s) for
// the container's own agent and then removes the container-side statuses
// that are left.
func (b *bench) costPhase(t *testing.T, c *cniEnv) {
	k := b.cfg.costAdds
	before := b.etcd.counts(t)
	for i := range k {
		if err := c.add(fmt.Sprintf("bench-cost-%04d", i)); err != nil {
			t.Fatalf("ADD: %v", err)
		}
	}
	mid := b.etcd.counts(t)
	add := mid.sub(before).div(float64(k))

	// The ADD transaction as the plugin sends it, rebuilt from what it
	// wrote: three puts, each guarded by a compare, and the status read;
	// in its else branch the attachment's three reads.
	var largestOps int
	var largestBytes, payload float64
	for i := range k {
		id := fmt.Sprintf("bench-cost-%04d", i)
		txn := &pb.TxnRequest{}
		var bytes float64
		for _, key := range []string{
			schema.InterfaceKey(c.host.Name, id, "net1"),
			schema.ContainerInterfaceKey(c.host.Name, id, "net1"),
			schema.ContainerMetaKey(c.host.Name, id),
		} {
			kv, err := b.etcd.Store.Get(context.Background(), key)
			if err != nil || kv == nil {
				t.Fatalf("read back %s: %v", key, err)
			}
			txn.Compare = append(txn.Compare, &pb.Compare{Key: []byte(key), Target: pb.Compare_MOD, Result: pb.Compare_EQUAL,
				TargetUnion: &pb.Compare_ModRevision{ModRevision: kv.ModRevision}})
			txn.Success = append(txn.Success, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{
				RequestPut: &pb.PutRequest{Key: []byte(key), Value: kv.Value}}})
			bytes += float64(len(key) + len(kv.Value))
		}
		sk := schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: c.host.Name, Container: id, Interface: "net1"})
		if kv, err := b.etcd.Store.Get(context.Background(), sk); err == nil && kv != nil {
			bytes += float64(len(sk) + len(kv.Value))
		}
		txn.Success = append(txn.Success, rangeOp(sk, ""))
		for _, p := range []string{schema.ContainerInterfacesPrefix(c.host.Name, id), schema.ContainerPrefix(c.host.Name, id)} {
			txn.Failure = append(txn.Failure, rangeOp(p, clientv3.GetPrefixRangeEnd(p)))
		}
		txn.Failure = append(txn.Failure, rangeOp(sk, ""))
		largestOps = max(largestOps, len(txn.Success), len(txn.Compare), len(txn.Failure))
		largestBytes = max(largestBytes, float64(txn.Size()))
		payload += bytes
	}
	payload /= float64(k)

	mid = b.etcd.counts(t) // the read-back above is not the DELs'
	for i := range k {
		if err := c.del(fmt.Sprintf("bench-cost-%04d", i)); err != nil {
			t.Fatalf("DEL: %v", err)
		}
	}
	after := b.etcd.counts(t)
	del := after.sub(mid).div(float64(k))
	time.Sleep(containerStatusGrace + 2*time.Second)
	later := b.etcd.counts(t).sub(after).div(float64(k))

	reqs := add.Unary + add.WatchStreams
	b.res.valueRow("cost_add_etcd_requests", "req/ADD", reqs, 2, "1 txn + 1 watch").
		target("<= 3 (the plugin's transaction and watch, the agent's status write)", reqs <= 3).
		note("unary RPCs + Watch streams per ADD (the agent's status write included), no IPAM (with IPAM one more: the read "+
			"that keeps a repeated ADD from running IPAM twice; with a user and password one more: etcd's Authenticate): %s", add)
	b.res.valueRow("cost_add_etcd_writes", "writes/ADD", add.writes(), 2, "intents txn + status txn").
		note("%s keys written per ADD (mvcc puts); per DEL: %s writes, %s keys deleted", num(add.KeysPut), num(del.writes()), num(del.KeysDeleted))
	b.res.valueRow("cost_add_etcd_bytes", "B/ADD", add.RxBytes+add.TxBytes, payload, "intent+status payload").
		note("bytes etcd received (%s) + sent (%s) per ADD on a host with no other interface; floor: the keys and values of "+
			"the three intents and the status", num(add.RxBytes), num(add.TxBytes))
	b.res.valueRow("cost_del_etcd_requests", "req/DEL", del.Unary+del.WatchStreams, 2, "1 txn + 1 watch").
		target("<= 3 (the plugin's transaction and watch, the agent's status delete)", del.Unary+del.WatchStreams <= 3).
		note("%s; then, %v after its container's last DEL, the host agent's clean-up of the container's container-side "+
			"statuses (there are none here: no container agent ran for these containers): %s requests per DEL (%s)",
			del, containerStatusGrace, num(later.Unary+later.WatchStreams), later)
	b.res.valueRow("cost_txn_max_ops", "ops", float64(largestOps), 128, "etcd --max-txn-ops").
		target("<= 1x the limit", largestOps <= 128).
		note("the largest transaction is the ADD's: 3 compares, then 3 puts and the status read, else the attachment's 3 reads " +
			"(a 4th compare and read with a shared socket file); DEL: 4 compares, then 3 deletes and 2 reads, else 3 reads; status writes: 1 put")
	b.res.valueRow("cost_txn_max_bytes", "B", largestBytes, 1.5*(1<<20), "etcd --max-request-bytes").
		target("<= 1x the limit", largestBytes <= 1.5*(1<<20)).
		note("protobuf size of the ADD's TxnRequest rebuilt from the keys and values it wrote")
	b.costPerAdd = add
}

// containerStatusGrace is agent/host's: how long the host agent lets a
// container's own agent remove its statuses after the container's last
// DEL before it removes what is left.
const containerStatusGrace = 5 * time.Second

// rangeOp is a read of key (to end: of a range) in a transaction.
func rangeOp(key, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(key), RangeEnd: []byte(end)}}}
}

// throughputConcurrency are the concurrent callers of the one-host
// throughput rows, each against the host-local-only chain at the same
// concurrency. Only the last carries a target: with fewer callers than
// it takes to fill the machine, a row is bound by one ADD's latency
// (the cni_add rows' target) rather than by what a cycle costs.
var throughputConcurrency = []int{1, 4, 16}

// cycler is what throughput drives: ADD then DEL of one container.
type cycler struct {
	name     string
	add, del func(id string) error
}

func (c *cniEnv) cycler() cycler { return cycler{name: c.host.Name, add: c.add, del: c.del} }

// hostLocalChain is the throughput floor: a network whose only plugin is
// host-local (it reads the ipam section of the config it is given),
// through the same libcni, with its own data directory.
func (b *bench) hostLocalChain(t testing.TB) cycler {
	t.Helper()
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"bench-host-local","plugins":[{"type":"host-local",`+
		`"ipam":{"type":"host-local","ranges":[[{"subnet":"10.250.0.0/16"}]],"dataDir":%q}}]}`, t.TempDir())
	list, err := libcni.NetworkConfFromBytes([]byte(conf))
	if err != nil {
		t.Fatalf("host-local chain %s: %v", conf, err)
	}
	cfg := libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(b.hostLocal)}, t.TempDir(), nil)
	rt := func(id string) *libcni.RuntimeConf {
		return &libcni.RuntimeConf{ContainerID: id, NetNS: b.netns, IfName: "net1"}
	}
	return cycler{name: "host-local",
		add: func(id string) error { _, err := cfg.AddNetworkList(context.Background(), list, rt(id)); return err },
		del: func(id string) error { return cfg.DelNetworkList(context.Background(), list, rt(id)) }}
}

// throughput runs workers that each ADD and DEL in a loop through libcni
// for d, spread over the hosts, and compares with the same number of
// workers doing the same through the host-local-only chain.
func (b *bench) throughput(t *testing.T, name string, envs []*cniEnv, workers int, d time.Duration, e *etcdRun, targeted bool) {
	var pids []int
	for _, p := range e.procs {
		pids = append(pids, p.Pid())
	}
	var agents []int
	for _, c := range envs {
		agents = append(agents, c.host.Agent.Pid())
	}
	// etcd and the agents are idle during the floor's run: what they
	// spend then is their cost of being there, not of the ADDs and DELs.
	idle := takeCPU(pids, agents)
	floorStart := time.Now()
	floor := cycleRate(t, []cycler{b.hostLocalChain(t)}, workers, d)
	idle = idle.since()
	floorCPU := idle
	floorCPU.etcdCPU, floorCPU.agentCPU = 0, 0
	idleSecs := time.Since(floorStart).Seconds()
	if floor.cycles == 0 {
		t.Errorf("%s floor: no host-local ADD+DEL completed: %v", name, floor.firstErr)
	}
	var cs []cycler
	for _, c := range envs {
		cs = append(cs, c.cycler())
	}
	before := e.counts(t)
	cpu := takeCPU(pids, agents)
	r := cycleRate(t, cs, workers, d)
	cpu = cpu.since()
	delta := e.counts(t).sub(before)
	n := float64(r.cycles)
	row := b.res.rateRow(name, "ADD+DEL/s", r.rate, floor.rate, fmt.Sprintf("host-local chain, %d callers", workers))
	if targeted {
		row.target(">= 0.5x the floor", r.rate >= 0.5*floor.rate)
	} else {
		row.note("no target: %d caller(s) do not fill the machine, so the rate follows one ADD's latency (cni_add)", workers)
	}
	row.note("%d concurrent callers over %d host(s) for %v: %d ADD+DEL cycles (p50 %s ms, p99 %s ms each), %d failed; "+
		"etcd writes per ADD+DEL %s (keys put %s, deleted %s); floor: the same callers through libcni on a chain whose only "+
		"plugin is host-local: %s cycles/s (p50 %s ms, p99 %s ms each)",
		workers, len(envs), d, r.cycles, num(ms(r.lat.pct(50))), num(ms(r.lat.pct(99))), r.failures,
		num(delta.writes()/max(n, 1)), num(delta.KeysPut/max(n, 1)), num(delta.KeysDeleted/max(n, 1)),
		num(floor.rate), num(ms(floor.lat.pct(50))), num(ms(floor.lat.pct(99))))
	row.note("CPU per ADD+DEL: %s; host-local chain: %s (on a saturated machine the rates can only be as far apart as "+
		"these totals); idle, during the floor's run, etcd spent %s ms/s and the host agents %s ms/s",
		cpu.per(r.cycles), floorCPU.per(floor.cycles), num(ms(idle.etcdCPU)/idleSecs), num(ms(idle.agentCPU)/idleSecs))
	if r.firstErr != nil {
		row.note("first failure: %v", r.firstErr)
	}
	if r.cycles == 0 {
		t.Errorf("%s: no ADD+DEL completed: %v", name, r.firstErr)
	}
}

// cpuUse is the CPU time spent by the parts of a throughput run: the
// plugin processes (this process's children that ended: the plugins libcni
// exec'd), this process (libcni, vppsim), the etcd members and the host
// agents.
type cpuUse struct {
	etcd, agents                     []int
	plugins, self, etcdCPU, agentCPU time.Duration
}

func takeCPU(etcd, agents []int) cpuUse {
	u := cpuUse{etcd: etcd, agents: agents, plugins: rusage(syscall.RUSAGE_CHILDREN), self: rusage(syscall.RUSAGE_SELF)}
	u.etcdCPU, u.agentCPU = procsCPU(etcd), procsCPU(agents)
	return u
}

// since is the CPU time spent since u was taken.
func (u cpuUse) since() cpuUse {
	now := takeCPU(u.etcd, u.agents)
	return cpuUse{plugins: now.plugins - u.plugins, self: now.self - u.self, etcdCPU: now.etcdCPU - u.etcdCPU, agentCPU: now.agentCPU - u.agentCPU}
}

func (u cpuUse) per(cycles int) string {
	n := float64(max(cycles, 1))
	per := func(d time.Duration) string { return num(ms(d) / n) }
	total := u.plugins + u.self + u.etcdCPU + u.agentCPU
	s := fmt.Sprintf("%s ms (plugins %s, libcni and vppsim in the test process %s", per(total), per(u.plugins), per(u.self))
	if u.etcdCPU+u.agentCPU > 0 {
		s += fmt.Sprintf(", etcd %s, host agents %s", per(u.etcdCPU), per(u.agentCPU))
	}
	return s + ")"
}

func rusage(who int) time.Duration {
	var r syscall.Rusage
	if err := syscall.Getrusage(who, &r); err != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// procsCPU sums the user and system time of processes (/proc/<pid>/stat,
// in clock ticks of 10 ms).
func procsCPU(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.Atoi(f[11])
		st, _ := strconv.Atoi(f[12])
		total += time.Duration(u+st) * 10 * time.Millisecond
	}
	return total
}

type cycles struct {
	cycles, failures int
	rate             float64
	lat              dist
	firstErr         error
}

// cycleRate runs workers, spread over cs, that ADD and DEL in a loop for d.
func cycleRate(t *testing.T, cs []cycler, workers int, d time.Duration) cycles {
	var (
		n, failures atomic.Int64
		mu          sync.Mutex
		lat         []time.Duration
		firstErr    error
		wg          sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cs[w%len(cs)]
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("tp-%s-%02d-%05d", c.name, w, i)
				s := time.Now()
				err := c.add(id)
				if err == nil {
					err = c.del(id)
				}
				if err != nil {
					failures.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("%s: %w", id, err)
					}
					mu.Unlock()
					_ = c.del(id)
					continue
				}
				n.Add(1)
				mu.Lock()
				lat = append(lat, time.Since(s))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return cycles{cycles: int(n.Load()), failures: int(failures.Load()), rate: float64(n.Load()) / time.Since(start).Seconds(),
		lat: newDist(lat), firstErr: firstErr}
}
