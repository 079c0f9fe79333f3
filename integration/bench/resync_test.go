package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

const bigHost = "bench-big"

// waitConverged polls the agent's own metrics until its interface
// controller has reconciled every one of n keys plus the sweep and its
// queue is empty. (In an adopt nothing is written, so no status shows the
// end.) It returns how many reconciles failed on the way.
func waitConverged(t *testing.T, h *harness.Host, n int, limit time.Duration) float64 {
	t.Helper()
	return waitMetrics(t, "http://"+h.MetricsAddr+"/metrics", n, limit)
}

// readyStatuses counts the host's ready interface statuses.
func readyStatuses(t *testing.T, st *store.Client, host string) int {
	t.Helper()
	kvs, _, err := st.List(context.Background(), schema.StatusHostPrefix(host))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, kv := range kvs {
		if s, err := schema.DecodeAs[schema.InterfaceStatus](kv.Value); err == nil && s.Ready {
			n++
		}
	}
	return n
}

func secs(d time.Duration) float64 { return d.Seconds() }

// resyncPhase: a host holding cfg.intents interfaces. Its agent first
// starts against an empty VPP with no statuses (initial), then restarts
// with VPP holding everything (adopt), then restarts after VPP restarted
// empty (cold). The cold floor is taken twice, next to what it is compared
// with: on a simulator of its own before the initial sync, and on the
// host's own simulator, restarted empty, right before the cold resync.
func (b *bench) resyncPhase(t *testing.T) {
	n := b.cfg.intents
	label := b.cfg.intentsLabel()
	limit := 8 * time.Minute

	var coldFloors []time.Duration
	func() {
		dir := harness.ShortTempDir(t)
		sim, err := vppsim.Start(vppsim.Options{Socket: filepath.Join(dir, "api.sock"), RuntimeDir: dir})
		if err != nil {
			t.Fatalf("start vppsim: %v", err)
		}
		// Closed at once: every master memif holds a listening socket in
		// this process.
		defer sim.Close()
		coldFloors = append(coldFloors, b.floorColdCreate(t, sim, n))
	}()

	sockDir := harness.ShortTempDir(t)
	var ops []store.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := b.etcd.Store.Apply(context.Background(), ops...); err != nil {
			t.Fatal(err)
		}
		ops = nil
	}
	for i := range n {
		ctr := fmt.Sprintf("r%05d", i)
		hi := &schema.HostInterface{Host: bigHost, Container: ctr, Name: "net1", Type: schema.IfTypeMemif,
			NetType: schema.NetTypeBridge, Network: "bench-net", Bridge: 4, MAC: testMAC(i).String(),
			Memif: &schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet,
				SocketPath: filepath.Join(sockDir, "memif-"+ctr+"-net1.sock")}}
		v, err := schema.Encode(hi)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, store.Op{Key: schema.InterfaceKey(bigHost, ctr, "net1"), Value: v})
		if len(ops) == 100 {
			flush()
		}
	}
	flush()

	// Initial: empty VPP, no statuses.
	start := time.Now()
	h := b.startHost(t, bigHost)
	initialErrs := waitConverged(t, h, n, limit)
	initial := time.Since(start)
	if got := readyStatuses(t, b.etcd.Store, bigHost); got != n {
		t.Fatalf("%d ready statuses after the initial sync, want %d", got, n)
	}

	// Adopt: VPP holds everything; the agent restarts.
	if err := h.Agent.Stop(10 * time.Second); err != nil {
		t.Logf("agent stop: %v", err)
	}
	var floors []time.Duration
	cli := dialVPP(t, h.VPPSocket)
	st := connectStore(t, b.etcd.Endpoints)
	for range 3 {
		s := time.Now()
		ints, _, err := st.List(context.Background(), schema.HostPrefix(bigHost))
		if err != nil {
			t.Fatal(err)
		}
		stats, _, err := st.List(context.Background(), schema.StatusHostPrefix(bigHost))
		if err != nil {
			t.Fatal(err)
		}
		ifs, err := cli.Interfaces(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		floors = append(floors, time.Since(s))
		if len(ints) < n || len(stats) < n || len(ifs) < n {
			t.Fatalf("adopt floor read %d intents, %d statuses, %d interfaces; want %d each", len(ints), len(stats), len(ifs), n)
		}
	}
	cli.Close()
	adoptFloor := newDist(floors)

	adoptVPP := countMsgs(h.VPP)
	adoptEtcd := b.etcd.counts(t)
	start = time.Now()
	h.RestartAgent(t)
	adoptReg := time.Since(start)
	adoptErrs := waitConverged(t, h, n, limit)
	adopt := time.Since(start)
	adoptVPPDelta := countMsgs(h.VPP).sub(adoptVPP)
	adoptEtcdDelta := b.etcd.counts(t).sub(adoptEtcd)
	fp := footprint(t, h)

	// Cold: VPP restarted empty, the agent restarts. The floor first, on
	// the same simulator, restarted empty before and after it.
	if err := h.Agent.Stop(10 * time.Second); err != nil {
		t.Logf("agent stop: %v", err)
	}
	if err := h.VPP.Restart(); err != nil {
		t.Fatal(err)
	}
	coldFloors = append(coldFloors, b.floorColdCreate(t, h.VPP, n))
	if err := h.VPP.Restart(); err != nil {
		t.Fatal(err)
	}
	coldVPP := countMsgs(h.VPP)
	coldEtcd := b.etcd.counts(t)
	start = time.Now()
	h.RestartAgent(t)
	coldReg := time.Since(start)
	coldErrs := waitConverged(t, h, n, limit)
	cold := time.Since(start)
	coldVPPDelta := countMsgs(h.VPP).sub(coldVPP)
	coldEtcdDelta := b.etcd.counts(t).sub(coldEtcd)
	if got := len(h.VPP.Snapshot().Memifs); got != n {
		t.Errorf("%d memifs after the cold resync, want %d", got, n)
	}
	after := footprint(t, h)

	coldFloor := newDist(coldFloors)
	cf := secs(coldFloor.pct(50))
	b.res.floorRow("resync_cold_floor_"+label, coldFloor,
		fmt.Sprintf("%d memif masters in one bridge domain created straight through agent/vpp from their own process (testdata/vppops) "+
			"with Pipeline and CreateMemifs (window 256): socket filenames, create+tag, bridge, admin up; no dumps, no etcd; "+
			"taken before the initial sync on a fresh simulator and right before the cold resync on the host's", n))
	b.res.valueRow("resync_initial_"+label, "s", secs(initial), cf, "cold floor").
		note("agent started with %d intents, an empty VPP and no statuses: everything created and %d statuses written; "+
			"%v failed reconciles on the way", n, n, initialErrs)
	b.res.floorRow("resync_adopt_floor_"+label, adoptFloor,
		fmt.Sprintf("store.List (pages of 1000) of the host's %d intents and %d statuses with a fresh client, plus one "+
			"sw_interface_dump through agent/vpp; p50 of 3", n, n))
	row := b.res.valueRow("resync_adopt_"+label, "s", secs(adopt), secs(adoptFloor.pct(50)), "adopt floor")
	row.target("<= 3x, zero dataplane writes", secs(adopt) <= 3*secs(adoptFloor.pct(50)) && adoptVPPDelta.writes() == 0)
	row.note("agent process start until all %d keys and the sweep are reconciled and its queue is empty (from its /metrics); "+
		"its registration key appeared after %s ms; an agent with nothing to do takes %s ms for the same (registered after %s ms: "+
		"process start, VPP and etcd connections, status load, registration; then the sweep's dumps); "+
		"VPP: %s; etcd: %s (registration included); %v failed reconciles",
		n, num(ms(adoptReg)), num(ms(b.agentStartEmpty)), num(ms(b.agentRegEmpty)), adoptVPPDelta.per(1), adoptEtcdDelta, adoptErrs)
	b.res.valueRow("resync_adopt_vpp_writes", "msgs", float64(adoptVPPDelta.writes()), 0, "").
		target("0", adoptVPPDelta.writes() == 0).
		note("VPP messages other than dumps and pings during the adopt")
	row = b.res.valueRow("resync_cold_"+label, "s", secs(cold), cf, "cold floor")
	row.target("<= 2x", secs(cold) <= 2*cf)
	row.note("agent start after VPP restarted empty until all %d are re-created and their statuses are in etcd (registered after %s ms); "+
		"the sweep creates what VPP lacks with pipelined calls, then each key's reconcile finds it done; VPP: %s; "+
		"etcd: %s (%s status transactions: statuses are batched, and rewritten only when their sw_if_index changed); "+
		"%v failed reconciles",
		n, num(ms(coldReg)), coldVPPDelta.per(n), coldEtcdDelta, num(coldEtcdDelta.Txn), coldErrs)

	idle := agentFootprint{}
	if b.idleFootprint != nil {
		idle = *b.idleFootprint
	}
	b.res.valueRow("cost_agent_rss_"+label, "MiB", fp.rssMiB, idle.rssMiB, "idle agent, 0 interfaces").
		target("<= 64 MiB", fp.rssMiB <= 64).
		note("VmRSS of the host agent holding %d interfaces after the adopt (after the cold resync: %s MiB); peak (VmHWM) %s MiB; "+
			"Go runtime: heap in use %s MiB, heap idle not yet returned %s MiB, obtained from the OS %s MiB "+
			"(idle agent: RSS %s, heap in use %s, sys %s MiB)",
			n, num(after.rssMiB), num(max(fp.hwmMiB, after.hwmMiB)), num(fp.heapInuse), num(fp.heapIdleKept), num(fp.sys),
			num(idle.rssMiB), num(idle.heapInuse), num(idle.sys))
	b.res.valueRow("cost_agent_goroutines_"+label, "goroutines", fp.goroutines, idle.goroutines, "idle agent, 0 interfaces")

	// ADD on the host that holds them all.
	c := b.newCNI(t, b.etcd, h)
	k := b.cfg.bigAdds
	var lat []time.Duration
	var pr pairs
	var per etcdCounts
	for i := range k {
		b.addFloorSample(&pr, true)
		before := b.etcd.counts(t)
		s := time.Now()
		if err := c.add(fmt.Sprintf("bench-big-%04d", i)); err != nil {
			t.Fatalf("ADD on %s: %v", bigHost, err)
		}
		lat = append(lat, time.Since(s))
		d := b.etcd.counts(t).sub(before)
		per = per.add(d)
	}
	per = per.div(float64(k))
	for i := range k {
		if err := c.del(fmt.Sprintf("bench-big-%04d", i)); err != nil {
			t.Fatalf("DEL on %s: %v", bigHost, err)
		}
	}
	f50, f99 := pr.floor(addFloor...)
	b.res.latencyRow("cni_add_at_"+label, newDist(lat), f50, f99, addFloorOf).
		note("the same ADD on the host that already holds %d interfaces; floors interleaved", n)
	empty := b.costPerAdd.RxBytes + b.costPerAdd.TxBytes
	b.res.valueRow("cost_add_etcd_bytes_at_"+label, "B/ADD", per.RxBytes+per.TxBytes, empty, "same on an empty host").
		note("per ADD with %d interfaces on the host: %s", n, per)
}

// clusterPhase: ADD+DEL throughput across 10 hosts on a 3-member cluster.
func (b *bench) clusterPhase(t *testing.T) {
	e := startEtcd(t, 3)
	var envs []*cniEnv
	for i := range b.cfg.clusterHosts {
		h := e.StartHost(t, fmt.Sprintf("node%02d", i))
		envs = append(envs, b.newCNI(t, e, h))
	}
	b.throughput(t, fmt.Sprintf("throughput_%d_hosts", b.cfg.clusterHosts), envs, b.cfg.clusterWorkers, b.cfg.clusterDuration, e, true)
}
