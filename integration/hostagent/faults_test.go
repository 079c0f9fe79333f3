package hostagent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/core"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/spdksim"
	"github.com/uspace-io/uspace/schema"
)

// putMemifs writes n memif intents c0..c(n-1) in one transaction.
func putMemifs(t *testing.T, e *harness.Etcd, h *harness.Host, names []string, bridge uint32) int64 {
	objs := map[string]schema.Object{}
	for _, c := range names {
		objs[ifKey(h, c, "net1")] = memifIntent(h, c, "net1", bridge)
	}
	return e.Put(t, objs)
}

func names(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// swIfIndexes maps uspace tags to sw_if_index.
func swIfIndexes(h *harness.Host) map[string]uint32 {
	out := map[string]uint32{}
	for _, i := range uspaceIfs(h.VPP.Snapshot()) {
		out[i.Tag] = i.SwIfIndex
	}
	return out
}

func TestAgentRestartAdoptsAndRemovesOrphans(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	all := names("c", 6)
	rev := putMemifs(t, e, h, all, 5)
	for _, c := range all {
		waitIfReady(t, e, h, c, "net1", rev)
	}
	before := swIfIndexes(h)
	creates := h.VPP.MessageCount("memif_create_v2")

	h.Agent.Kill()
	// While the agent is down: two intents go, one arrives, and an
	// interface is left that a crash between create and status would
	// leave: tagged by uspace, with no intent and no status.
	e.Delete(t, ifKey(h, "c0", "net1"), ifKey(h, "c1", "net1"))
	rev = putMemifs(t, e, h, []string{"late"}, 5)
	leftover := vppstate.Owner(ifKey(h, "crashed", "net1"))
	createTagged(t, h, leftover)
	creates++
	h.RestartAgent(t)

	waitIfReady(t, e, h, "late", "net1", rev)
	e.WaitGone(t, ifStatusKey(h, "c0", "net1"))
	e.WaitGone(t, ifStatusKey(h, "c1", "net1"))
	// A key queued after the restart's sweep: once it is ready, the sweep
	// has run.
	rev = putMemifs(t, e, h, []string{"probe"}, 5)
	waitIfReady(t, e, h, "probe", "net1", rev)
	if _, ok := swIfIndexes(h)[vpp.TagPrefix+leftover]; ok {
		t.Errorf("leftover uspace interface of owner %s not swept", leftover)
	}
	e.Delete(t, ifKey(h, "probe", "net1"))
	e.WaitGone(t, ifStatusKey(h, "probe", "net1"))
	creates++

	after := swIfIndexes(h)
	if len(after) != 5 {
		t.Fatalf("VPP holds %d uspace interfaces, want 5: %v", len(after), after)
	}
	kept := 0
	for tag, idx := range before {
		if a, ok := after[tag]; ok {
			kept++
			if a != idx {
				t.Errorf("interface %s re-created (%d -> %d) instead of adopted", tag, idx, a)
			}
		}
	}
	if kept != 4 {
		t.Errorf("%d of the 4 surviving interfaces kept", kept)
	}
	if got := h.VPP.MessageCount("memif_create_v2") - creates; got != 1 {
		t.Errorf("%d memif creates after restart, want exactly 1 (the new intent)", got)
	}
	if bd, _ := bridge(h.VPP.Snapshot(), 5); len(bd.Members) != 5 {
		t.Errorf("bridge 5 has %d members, want 5", len(bd.Members))
	}
}

// createTagged makes a memif the way the agent does, owned by owner.
func createTagged(t *testing.T, h *harness.Host, owner string) {
	t.Helper()
	c := vpp.Dial(vpp.Config{Socket: h.VPPSocket})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(h.SharedDir, "leftover.sock")
	sid, err := c.EnsureMemifSocket(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateMemif(ctx, vpp.MemifSpec{Owner: owner, SocketID: sid, Role: vpp.MemifMaster}); err != nil {
		t.Fatal(err)
	}
}

func TestAgentKilledMidReconcile(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	if err := h.VPP.SetLatency("memif_create_v2", 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	all := names("k", 12)
	rev := putMemifs(t, e, h, all, 3)
	// Some converged, the rest still queued or in flight.
	waitIfReady(t, e, h, "k0", "net1", rev)
	h.Agent.Kill()
	h.VPP.ClearFaults()
	h.RestartAgent(t)
	for _, c := range all {
		waitIfReady(t, e, h, c, "net1", rev)
	}
	st := h.VPP.Snapshot()
	if n := len(uspaceIfs(st)); n != 12 || len(st.Memifs) != 12 {
		t.Fatalf("VPP holds %d uspace interfaces and %d memifs, want 12 each", n, len(st.Memifs))
	}
	if bd, _ := bridge(st, 3); len(bd.Members) != 12 {
		t.Errorf("bridge 3 has %d members, want 12", len(bd.Members))
	}
}

// convergedThenVPPStopped has n memifs converged in bridge domain 9, then
// stops VPP and waits until the outage shows in the statuses.
func convergedThenVPPStopped(t *testing.T, e *harness.Etcd, h *harness.Host, prefix string, n int) ([]string, int64) {
	t.Helper()
	all := names(prefix, n)
	rev := putMemifs(t, e, h, all, 9)
	for _, c := range all {
		waitIfReady(t, e, h, c, "net1", rev)
	}
	if err := h.VPP.Stop(); err != nil {
		t.Fatal(err)
	}
	harness.WaitStatus[schema.InterfaceStatus](t, e, ifStatusKey(h, all[0], "net1"), rev, func(s *schema.InterfaceStatus) bool {
		return !s.Ready && strings.Contains(s.Error, "not connected")
	})
	return all, rev
}

func TestVPPRestartReappliesEverything(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	all, rev := convergedThenVPPStopped(t, e, h, "r", 3)
	if err := h.VPP.Start(); err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		waitIfReady(t, e, h, c, "net1", rev)
	}
	st := h.VPP.Snapshot()
	if n := len(uspaceIfs(st)); n != 3 {
		t.Fatalf("VPP holds %d uspace interfaces after restart, want 3", n)
	}
	if bd, _ := bridge(st, 9); len(bd.Members) != 3 {
		t.Errorf("bridge 9 has %d members, want 3", len(bd.Members))
	}
}

func TestSPDKRestartReappliesVolumes(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	v := &schema.Volume{Host: h.Name, Name: "vol1", Type: schema.VolumeSCSI, Device: "vhostscsi1",
		Root: h.VolumeRoot, Bdev: "Malloc-vhostscsi1", Minor: 0,
		Malloc: &schema.MallocSpec{SizeBytes: 1 << 20, BlockSize: 512}}
	rev := e.Put(t, map[string]schema.Object{volKey(h, "vol1"): v})
	harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, "vol1"), rev, harness.Ready[schema.VolumeStatus])
	if err := h.SPDK.Restart(spdksim.RestartOptions{Downtime: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, "vol1"), rev, func(s *schema.VolumeStatus) bool { return !s.Ready })
	s := harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, "vol1"), rev, harness.Ready[schema.VolumeStatus])
	snap := h.SPDK.Snapshot()
	if len(snap.Controllers) != 1 || snap.Controllers[0].Type != "scsi" || len(snap.Controllers[0].Targets) != 1 {
		t.Fatalf("controllers after SPDK restart = %+v", snap.Controllers)
	}
	if s.Major != 242 {
		t.Errorf("scsi volume major %d, want 242", s.Major)
	}
}

func TestCompactionWhileAgentDown(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	rev := putMemifs(t, e, h, names("p", 3), 4)
	waitIfReady(t, e, h, "p2", "net1", rev)
	if err := h.Agent.Stop(10 * time.Second); err != nil {
		t.Fatalf("agent did not exit cleanly on SIGTERM: %v", err)
	}
	// Churn, then compact away the history the agent would resume from.
	for i := range 5 {
		putMemifs(t, e, h, []string{fmt.Sprintf("q%d", i)}, 4)
		e.Delete(t, ifKey(h, fmt.Sprintf("q%d", i), "net1"))
	}
	e.Delete(t, ifKey(h, "p0", "net1"))
	rev = putMemifs(t, e, h, []string{"final"}, 4)
	ctx := context.Background()
	if _, err := e.Store.Etcd().Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	h.RestartAgent(t)
	waitIfReady(t, e, h, "final", "net1", rev)
	e.WaitGone(t, ifStatusKey(h, "p0", "net1"))
	st := h.VPP.Snapshot()
	if n := len(uspaceIfs(st)); n != 3 {
		t.Fatalf("VPP holds %d uspace interfaces, want 3 (p1, p2, final)", n)
	}
}

func TestForeignObjectsLeftAlone(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")

	// Another VPP user, with GoVPP and nothing of ours: an untagged memif in
	// an untagged bridge domain 99.
	conn, err := core.Connect(socketclient.NewVppClient(h.VPPSocket))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Disconnect()
	ctx := context.Background()
	foreignSock := filepath.Join(h.Dir, "foreign.sock")
	mc := memif.NewServiceClient(conn)
	if _, err := mc.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 50, SocketFilename: foreignSock}); err != nil {
		t.Fatal(err)
	}
	fm, err := mc.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 50, ID: 1})
	if err != nil {
		t.Fatal(err)
	}
	lc := l2.NewServiceClient(conn)
	if _, err := lc.BridgeDomainAddDelV2(ctx, &l2.BridgeDomainAddDelV2{BdID: 99, IsAdd: true, Flood: true, Forward: true, Learn: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.SwInterfaceSetL2Bridge(ctx, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: fm.SwIfIndex, BdID: 99, Enable: true, PortType: l2.L2_API_PORT_TYPE_NORMAL}); err != nil {
		t.Fatal(err)
	}

	// uspace joins the foreign bridge domain, leaves it, and sweeps on restart.
	rev := e.Put(t, map[string]schema.Object{ifKey(h, "mine", "net1"): memifIntent(h, "mine", "net1", 99)})
	s := waitIfReady(t, e, h, "mine", "net1", rev)
	if bd, _ := bridge(h.VPP.Snapshot(), 99); !slices.Contains(bd.Members, s.SwIfIndex) {
		t.Fatalf("uspace interface not in foreign bridge 99: %+v", bd)
	}
	e.Delete(t, ifKey(h, "mine", "net1"))
	e.WaitGone(t, ifStatusKey(h, "mine", "net1"))
	h.Agent.Kill()
	h.RestartAgent(t)
	// A round trip through the agent's queue after its sweep.
	rev = e.Put(t, map[string]schema.Object{ifKey(h, "probe", "net1"): memifIntent(h, "probe", "net1", 0)})
	waitIfReady(t, e, h, "probe", "net1", rev)

	st := h.VPP.Snapshot()
	bd, ok := bridge(st, 99)
	if !ok || !slices.Equal(bd.Members, []uint32{uint32(fm.SwIfIndex)}) {
		t.Fatalf("foreign bridge 99 = %+v (present %v), want only the foreign memif", bd, ok)
	}
	if _, ok := findIf(st, uint32(fm.SwIfIndex)); !ok {
		t.Fatal("foreign memif deleted")
	}
	if _, err := os.Stat(foreignSock); err != nil {
		t.Errorf("foreign socket file: %v", err)
	}
}

// A volume's SPDK objects are recorded in its status before they are made:
// an agent killed in the middle of making them, whose intent is deleted
// while it is down, undoes them when it comes back.
func TestAgentKilledMidVolume(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	h.SPDK.SetLatency("vhost_create_blk_controller", 3*time.Second)
	v := &schema.Volume{Host: h.Name, Name: "vol-kill", Type: schema.VolumeBlk, Device: "vhostblk7",
		Root: h.VolumeRoot, Bdev: "Malloc-vhostblk7", Minor: 7,
		Malloc: &schema.MallocSpec{SizeBytes: 1 << 20, BlockSize: 512}}
	rev := e.Put(t, map[string]schema.Object{volKey(h, "vol-kill"): v})
	// Handles recorded, not ready, no error: the agent is making them.
	harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, "vol-kill"), rev, func(s *schema.VolumeStatus) bool {
		return !s.Ready && s.Error == "" && s.Controller == "vhostblk7"
	})
	deadline := time.Now().Add(10 * time.Second)
	for len(h.SPDK.Snapshot().Bdevs) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the bdev was never made")
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.Agent.Kill()
	e.Delete(t, volKey(h, "vol-kill"))
	h.SPDK.ClearFaults()
	h.RestartAgent(t)
	e.WaitGone(t, volStatusKey(h, "vol-kill"))
	if snap := h.SPDK.Snapshot(); len(snap.Bdevs)+len(snap.Controllers) != 0 {
		t.Errorf("SPDK kept what the killed agent made: %+v", snap)
	}
	if _, err := os.Lstat(filepath.Join(h.VolumeRoot, "block", "devices", "vhostblk7")); err == nil {
		t.Error("device node left behind")
	}
}

// A VPP restarted empty is re-populated in bulk by the sweep; what the
// bulk calls fail for (a socket filename, two creates, a bridge port, an
// admin up) is left to each interface's own reconcile, which applies it.
// Every interface comes back exactly once, in its bridge domain, up.
func TestVPPRestartWithFailuresInTheBulk(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	all, rev := convergedThenVPPStopped(t, e, h, "f", 6)
	for msg, n := range map[string]int{"memif_socket_filename_add_del_v2": 1, "memif_create_v2": 2, "sw_interface_set_l2_bridge": 1, "sw_interface_set_flags": 1} {
		if err := h.VPP.FailNext(msg, n, -1); err != nil {
			t.Fatal(err)
		}
	}
	creates := h.VPP.MessageCount("memif_create_v2")
	if err := h.VPP.Start(); err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		waitIfReady(t, e, h, c, "net1", rev)
	}
	st := h.VPP.Snapshot()
	ifs := uspaceIfs(st)
	tags := map[string]bool{}
	for _, i := range ifs {
		if tags[i.Tag] || !i.AdminUp {
			t.Errorf("interface %+v twice or not up", i)
		}
		tags[i.Tag] = true
	}
	if len(ifs) != 6 || len(st.Memifs) != 6 {
		t.Fatalf("VPP holds %d uspace interfaces, %d memifs after the restart, want 6 each", len(ifs), len(st.Memifs))
	}
	if bd, _ := bridge(st, 9); len(bd.Members) != 6 {
		t.Errorf("bridge 9 has %d members, want 6", len(bd.Members))
	}
	if n := h.VPP.MessageCount("memif_create_v2") - creates; n < 8 {
		t.Errorf("%d memif creates after the restart: the injected failures were not hit", n)
	}
}
