package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

func names(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// memifs returns memif intents net1 of containers cs on h, in bridge.
func memifs(h *harness.Host, cs []string, bridge uint32) map[string]schema.Object {
	objs := map[string]schema.Object{}
	for _, c := range cs {
		objs[ifKey(h, c, "net1")] = memifIntent(h, c, "net1", bridge)
	}
	return objs
}

func merge(ms ...map[string]schema.Object) map[string]schema.Object {
	out := map[string]schema.Object{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// hasOwner says whether h's VPP holds a uspace interface for intent key.
func hasOwner(h *harness.Host, key string) bool {
	want := vpp.TagPrefix + vppstate.Owner(key)
	for _, i := range h.VPP.Snapshot().Interfaces {
		if i.Tag == want {
			return true
		}
	}
	return false
}

// Scenario 3: a host is partitioned from etcd (its agent's only way to the
// members is cut) while its intents change: interfaces deleted, added,
// moved to another bridge domain, a volume replaced. The partition
// outlasts the agent's lease, so the cluster sees the host's registration
// expire. Meanwhile the partitioned host keeps its dataplane exactly as it
// was (the agent process keeps running and tears nothing down), and the
// other host carries on converging. After the heal the agent registers
// again and converges to the latest intents. Both kinds of partition: one
// that resets the agent's connections, and a silent one (a link gone down)
// that only keep-alives and timeouts reveal.
func TestHostPartitionedFromEtcd(t *testing.T) {
	for _, mode := range []string{"reset", "blackhole"} {
		t.Run(mode, func(t *testing.T) { hostPartitioned(t, mode) })
	}
}

func hostPartitioned(t *testing.T, mode string) {
	e := startCluster(t)
	a, link := startLinkedHost(t, e, "node-a")
	b := e.StartHost(t, "node-b")

	e.Put(t, merge(
		memifs(a, names("c", 6), 4),
		map[string]schema.Object{
			ifKey(a, "v0", "net1"):   vhostIntent(a, "v0", "net1", 4),
			volKey(a, "vol0"):        volumeIntent(a, "vol0", schema.VolumeBlk, 0),
			volKey(a, "vol1"):        volumeIntent(a, "vol1", schema.VolumeSCSI, 0),
			ifKey(b, "b0", "net1"):   memifIntent(b, "b0", "net1", 4),
			ifKey(b, "b1", "net1"):   memifIntent(b, "b1", "net1", 0),
			ifKey(b, "b2", "net1"):   vhostIntent(b, "b2", "net1", 4),
			volKey(b, "bvol"):        volumeIntent(b, "bvol", schema.VolumeBlk, 0),
			ifKey(a, "c-moved", "x"): memifIntent(a, "c-moved", "x", 4),
		}))
	converged(t, e, a)
	converged(t, e, b)
	before := dataplane(a)
	statusesBefore := list(t, e, schema.StatusHostPrefix(a.Name))
	lease := agentLease(t, e, a.Name)

	if mode == "blackhole" {
		link.Blackhole()
	} else {
		link.Cut()
	}
	// The intents of the partitioned host change.
	e.Delete(t, ifKey(a, "c0", "net1"), ifKey(a, "c1", "net1"), ifKey(a, "v0", "net1"), volKey(a, "vol0"))
	e.Put(t, merge(memifs(a, []string{"new0", "new1"}, 4), map[string]schema.Object{
		ifKey(a, "c-moved", "x"): memifIntent(a, "c-moved", "x", 5),
		ifKey(a, "new2", "net1"): vhostIntent(a, "new2", "net1", 0),
		volKey(a, "vol2"):        volumeIntent(a, "vol2", schema.VolumeBlk, 1),
	}))
	// The other host is not affected.
	e.Delete(t, ifKey(b, "b1", "net1"))
	e.Put(t, memifs(b, names("b-new", 3), 6))
	converged(t, e, b)

	// The cluster notices the host is gone once its lease expires ...
	start := time.Now()
	e.WaitGone(t, schema.AgentKey(a.Name))
	t.Logf("node-a's registration expired %v after the cut", time.Since(start).Round(time.Millisecond))
	// ... while the host keeps its dataplane and statuses as they were.
	if !a.Agent.Running() {
		t.Fatalf("node-a's agent exited during the partition:\n%s", a.Agent.Output())
	}
	if got := dataplane(a); got != before {
		t.Errorf("node-a's dataplane changed while partitioned:\nbefore:\n%s\nafter:\n%s", before, got)
	}
	if got := list(t, e, schema.StatusHostPrefix(a.Name)); !slices.EqualFunc(got, statusesBefore, func(x, y store.KV) bool {
		return x.Key == y.Key && x.ModRevision == y.ModRevision
	}) {
		t.Errorf("node-a's statuses changed while it was partitioned: %v -> %v", keysOf(statusesBefore), keysOf(got))
	}

	link.Heal()
	waitRegistered(t, e, a.Name, lease)
	converged(t, e, a)
	for _, k := range []string{ifKey(a, "c0", "net1"), ifKey(a, "c1", "net1"), ifKey(a, "v0", "net1")} {
		if hasOwner(a, k) {
			t.Errorf("%s deleted during the partition is still in VPP", k)
		}
	}
	if snap := a.SPDK.Snapshot(); len(snap.Controllers) != 2 {
		t.Errorf("SPDK controllers after the heal: %+v, want vol1 and vol2", snap.Controllers)
	}
	converged(t, e, b)
}

// Scenario 4: agents killed with SIGKILL in the middle of a reconcile
// (VPP slowed down so that it takes a while), then restarted: the host
// agent with part of 20 interfaces applied, and a container agent with
// part of 10. Each converges to exactly its intents: no interface twice,
// no untagged leftover, none missing; the other host is unaffected.
func TestAgentsKilledMidReconcile(t *testing.T) {
	e := startCluster(t)
	hs := startHosts(t, e, "node1", "node2")
	h, other := hs[0], hs[1]

	// Host agent.
	if err := h.VPP.SetLatency("memif_create_v2", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	e.Put(t, memifs(other, names("o", 5), 4))
	rev := e.Put(t, memifs(h, names("k", 20), 4))
	waitReadyCount(t, e, schema.StatusHostPrefix(h.Name), rev, 5)
	h.Agent.Kill()
	ready := waitReadyCount(t, e, schema.StatusHostPrefix(h.Name), rev, 0)
	if ready >= 20 {
		t.Errorf("all 20 interfaces were ready before the kill: nothing was in flight")
	}
	h.VPP.ClearFaults()
	h.RestartAgent(t)
	converged(t, e, h)
	converged(t, e, other)
	t.Logf("host agent killed with %d of 20 interfaces reported", ready)

	// Container agent.
	const id = "ctr-kill"
	shared := harness.ShortTempDir(t)
	c := e.StartContainer(t, h.Name, shared, []string{"--container-id", id})
	// Slow where every interface takes its own round trip: an agent that
	// has just connected to its VPP creates the memifs in one pipelined
	// batch, but adds addresses interface by interface.
	if err := c.VPP.SetLatency("sw_interface_add_del_address", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	objs := map[string]schema.Object{}
	var ifs []string
	for i := range 10 {
		ifn := fmt.Sprintf("net%d", i)
		ifs = append(ifs, ifn)
		objs[schema.ContainerInterfaceKey(h.Name, id, ifn)] = containerMemif(h.Name, id, shared, ifn, i)
	}
	objs[schema.ContainerMetaKey(h.Name, id)] = &schema.ContainerMeta{Host: h.Name, Container: id, Interfaces: ifs}
	rev = e.Put(t, objs)
	waitReadyCount(t, e, schema.StatusContainerPrefix(h.Name, id), rev, 3)
	c.Agent.Kill()
	ready = waitReadyCount(t, e, schema.StatusContainerPrefix(h.Name, id), rev, 0)
	if ready >= 10 {
		t.Errorf("all 10 container interfaces were ready before the kill: nothing was in flight")
	}
	c.VPP.ClearFaults()
	if err := c.Agent.Start(); err != nil {
		t.Fatal(err)
	}
	convergedContainer(t, e, c, id)
	t.Logf("container agent killed with %d of 10 interfaces reported", ready)
}

// containerMemif is the container side of memif ifname, with an address.
func containerMemif(host, id, shared, ifname string, n int) *schema.ContainerInterface {
	return &schema.ContainerInterface{Host: host, Container: id, Name: ifname, Type: schema.IfTypeMemif, MTU: 1500,
		Memif: &schema.MemifSpec{Role: schema.MemifSlave, Mode: schema.MemifEthernet, SocketPath: shared + "/" + id + "-" + ifname},
		IPs:   []schema.IPAddress{{Address: fmt.Sprintf("10.9.%d.2/24", n), Gateway: fmt.Sprintf("10.9.%d.1", n)}}}
}

// Scenario 5: etcd compaction and defragmentation while agents are down.
// node1's agent is stopped (SIGTERM) and node2's agent is cut off from
// etcd (the process lives on, its watch stuck at an old revision); a
// container agent is stopped. Their intents churn, the history is
// compacted past every revision they saw, and every member is
// defragmented (after which all members agree on the key-value hash).
// Restarted and healed, the agents relist: node2's resumed watch finds its
// revision compacted and must list again, or the deletions made while it
// was away would never reach it. All converge to exactly the latest
// intents.
func TestCompactionAndDefragWhileAgentsDown(t *testing.T) {
	e := startCluster(t)
	h1 := e.StartHost(t, "node1")
	h2, link := startLinkedHost(t, e, "node2")
	const id = "ctr-compact"
	shared := harness.ShortTempDir(t)
	c := e.StartContainer(t, h1.Name, shared, []string{"--container-id", id})

	e.Put(t, merge(memifs(h1, names("p", 4), 4), memifs(h2, names("q", 4), 4), map[string]schema.Object{
		volKey(h2, "vol0"):                                volumeIntent(h2, "vol0", schema.VolumeBlk, 0),
		volKey(h2, "vol1"):                                volumeIntent(h2, "vol1", schema.VolumeBlk, 1),
		schema.ContainerMetaKey(h1.Name, id):              &schema.ContainerMeta{Host: h1.Name, Container: id, Interfaces: []string{"net0", "net1"}},
		schema.ContainerInterfaceKey(h1.Name, id, "net0"): containerMemif(h1.Name, id, shared, "net0", 0),
		schema.ContainerInterfaceKey(h1.Name, id, "net1"): containerMemif(h1.Name, id, shared, "net1", 1),
	}))
	converged(t, e, h1)
	converged(t, e, h2)
	convergedContainer(t, e, c, id)
	lease2 := agentLease(t, e, h2.Name)

	if err := h1.Agent.Stop(10 * time.Second); err != nil {
		t.Fatalf("node1's agent on SIGTERM: %v", err)
	}
	if err := c.Agent.Stop(10 * time.Second); err != nil {
		t.Fatalf("container agent on SIGTERM: %v", err)
	}
	link.Cut()

	// Churn: short-lived intents, then the final changes.
	for i := range 10 {
		tmp := fmt.Sprintf("tmp%d", i)
		e.Put(t, merge(memifs(h1, []string{tmp}, 4), memifs(h2, []string{tmp}, 4)))
		e.Delete(t, ifKey(h1, tmp, "net1"), ifKey(h2, tmp, "net1"))
	}
	e.Delete(t, ifKey(h1, "p0", "net1"), ifKey(h2, "q0", "net1"), ifKey(h2, "q1", "net1"), volKey(h2, "vol0"),
		schema.ContainerInterfaceKey(h1.Name, id, "net0"))
	rev := e.Put(t, merge(memifs(h1, []string{"p-new"}, 7), memifs(h2, []string{"q-new"}, 4), map[string]schema.Object{
		ifKey(h2, "q2", "net1"):                           memifIntent(h2, "q2", "net1", 9),
		volKey(h2, "vol2"):                                volumeIntent(h2, "vol2", schema.VolumeSCSI, 0),
		schema.ContainerMetaKey(h1.Name, id):              &schema.ContainerMeta{Host: h1.Name, Container: id, Interfaces: []string{"net1", "net2"}},
		schema.ContainerInterfaceKey(h1.Name, id, "net2"): containerMemif(h1.Name, id, shared, "net2", 2),
	}))

	ctx, cancel := context.WithTimeout(bg(), time.Minute)
	defer cancel()
	cli := e.Store.Etcd()
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact at %d: %v", rev, err)
	}
	for i, m := range e.Cluster.Members {
		if _, err := cli.Defragment(ctx, m.GRPCURL); err != nil {
			t.Fatalf("defragment member %d: %v", i, err)
		}
	}
	var hashes []uint32
	for i, m := range e.Cluster.Members {
		resp, err := cli.HashKV(ctx, m.GRPCURL, rev)
		if err != nil {
			t.Fatalf("hash of member %d: %v", i, err)
		}
		hashes = append(hashes, resp.Hash)
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Errorf("members disagree after compaction and defragmentation: hashes %v", hashes)
	}

	h1.RestartAgent(t)
	link.Heal()
	if err := c.Agent.Start(); err != nil {
		t.Fatal(err)
	}
	waitRegistered(t, e, h2.Name, 0)
	converged(t, e, h1)
	converged(t, e, h2)
	convergedContainer(t, e, c, id)
	for _, k := range []string{ifKey(h2, "q0", "net1"), ifKey(h2, "q1", "net1"), ifKey(h1, "p0", "net1")} {
		if hasOwner(h1, k) || hasOwner(h2, k) {
			t.Errorf("%s, deleted before the compaction, is still in VPP", k)
		}
	}
	if !h2.Agent.Running() {
		t.Errorf("node2's agent exited while cut off:\n%s", h2.Agent.Output())
	}
	t.Logf("node2's registration lease %x before the cut, %x after", lease2, agentLease(t, e, h2.Name))
}
