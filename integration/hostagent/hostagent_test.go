package hostagent_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/testutils"
	"golang.org/x/sys/unix"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/schema"
)

func memifIntent(h *harness.Host, container, ifname string, bridge uint32) *schema.HostInterface {
	hi := &schema.HostInterface{
		Host: h.Name, Container: container, Name: ifname, Type: schema.IfTypeMemif,
		NetType: schema.NetTypeInterface, MTU: 1500,
		Memif: &schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet,
			SocketPath: filepath.Join(h.SharedDir, "memif-"+container+"-"+ifname+".sock")},
	}
	if bridge != 0 {
		hi.NetType, hi.Bridge = schema.NetTypeBridge, bridge
	}
	return hi
}

func ifKey(h *harness.Host, container, ifname string) string {
	return schema.InterfaceKey(h.Name, container, ifname)
}

func ifStatusKey(h *harness.Host, container, ifname string) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: h.Name, Container: container, Interface: ifname})
}

func waitIfReady(t *testing.T, e *harness.Etcd, h *harness.Host, container, ifname string, rev int64) *schema.InterfaceStatus {
	t.Helper()
	return harness.WaitStatus[schema.InterfaceStatus](t, e, ifStatusKey(h, container, ifname), rev, harness.Ready[schema.InterfaceStatus])
}

// uspaceIfs returns the interfaces in VPP tagged by uspace.
func uspaceIfs(st vppsim.State) []vppsim.InterfaceState {
	var out []vppsim.InterfaceState
	for _, i := range st.Interfaces {
		if strings.HasPrefix(i.Tag, "uspace:") {
			out = append(out, i)
		}
	}
	return out
}

func bridge(st vppsim.State, id uint32) (vppsim.BridgeDomain, bool) {
	for _, bd := range st.BridgeDomains {
		if bd.ID == id {
			return bd, true
		}
	}
	return vppsim.BridgeDomain{}, false
}

func isSocket(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Type() == fs.ModeSocket
}

func TestMemifLifecycleWithSharedBridge(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")

	a, b := memifIntent(h, "ctr-a", "net1", 7), memifIntent(h, "ctr-b", "net1", 7)
	rev := e.Put(t, map[string]schema.Object{ifKey(h, "ctr-a", "net1"): a, ifKey(h, "ctr-b", "net1"): b})
	sa := waitIfReady(t, e, h, "ctr-a", "net1", rev)
	sb := waitIfReady(t, e, h, "ctr-b", "net1", rev)

	st := h.VPP.Snapshot()
	ifs := uspaceIfs(st)
	if len(ifs) != 2 {
		t.Fatalf("VPP has %d uspace interfaces, want 2: %+v", len(ifs), ifs)
	}
	for _, s := range []*schema.InterfaceStatus{sa, sb} {
		i, ok := findIf(st, s.SwIfIndex)
		if !ok || !i.AdminUp || i.BridgeDomain != 7 || i.DevType != "memif" || i.MTU[0] != 1500 {
			t.Errorf("interface %d = %+v, want memif admin-up in bridge 7 with MTU 1500", s.SwIfIndex, i)
		}
		if s.Bridge != 7 || s.SocketPath == "" {
			t.Errorf("status %+v lacks bridge or socket", s)
		}
		if !isSocket(s.SocketPath) {
			t.Errorf("memif master socket %s not created", s.SocketPath)
		}
	}
	bd, ok := bridge(st, 7)
	if !ok || len(bd.Members) != 2 || !strings.HasPrefix(bd.Tag, "uspace:") {
		t.Fatalf("bridge domain 7 = %+v (present %v), want 2 members and a uspace tag", bd, ok)
	}

	// The first delete leaves the bridge domain to the remaining member.
	e.Delete(t, ifKey(h, "ctr-a", "net1"))
	e.WaitGone(t, ifStatusKey(h, "ctr-a", "net1"))
	st = h.VPP.Snapshot()
	if bd, ok := bridge(st, 7); !ok || !slices.Equal(bd.Members, []uint32{sb.SwIfIndex}) {
		t.Fatalf("after first delete bridge 7 = %+v (present %v), want only %d", bd, ok, sb.SwIfIndex)
	}
	if isSocket(sa.SocketPath) {
		t.Errorf("socket %s left behind", sa.SocketPath)
	}

	e.Delete(t, ifKey(h, "ctr-b", "net1"))
	e.WaitGone(t, ifStatusKey(h, "ctr-b", "net1"))
	st = h.VPP.Snapshot()
	if n := len(uspaceIfs(st)); n != 0 {
		t.Errorf("%d uspace interfaces left", n)
	}
	if _, ok := bridge(st, 7); ok {
		t.Error("bridge domain 7 left after its last member went")
	}
	if len(st.Memifs) != 0 {
		t.Errorf("memifs left: %+v", st.Memifs)
	}
	for _, s := range st.MemifSockets {
		if s.ID != 0 {
			t.Errorf("memif socket filename left: %+v", s)
		}
	}
}

func findIf(st vppsim.State, idx uint32) (vppsim.InterfaceState, bool) {
	for _, i := range st.Interfaces {
		if i.SwIfIndex == idx {
			return i, true
		}
	}
	return vppsim.InterfaceState{}, false
}

func TestVhostUserLifecycle(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	sock := filepath.Join(h.SharedDir, "ctr-v-eth1")
	hi := &schema.HostInterface{Host: h.Name, Container: "ctr-v", Name: "eth1", Type: schema.IfTypeVhostUser,
		NetType: schema.NetTypeInterface, MAC: "02:fe:00:00:00:01",
		Vhost: &schema.VhostSpec{Mode: schema.VhostServer, SocketPath: sock}}
	rev := e.Put(t, map[string]schema.Object{ifKey(h, "ctr-v", "eth1"): hi})
	s := waitIfReady(t, e, h, "ctr-v", "eth1", rev)
	st := h.VPP.Snapshot()
	if len(st.VhostUsers) != 1 || st.VhostUsers[0].SockFilename != sock || !st.VhostUsers[0].IsServer {
		t.Fatalf("vhost-user interfaces = %+v, want one server on %s", st.VhostUsers, sock)
	}
	if i, _ := findIf(st, s.SwIfIndex); !i.AdminUp || i.MAC != "02:fe:00:00:00:01" {
		t.Errorf("interface = %+v, want admin up with the intent's MAC", i)
	}
	if !isSocket(sock) {
		t.Errorf("vhost-user server socket %s missing", sock)
	}
	e.Delete(t, ifKey(h, "ctr-v", "eth1"))
	e.WaitGone(t, ifStatusKey(h, "ctr-v", "eth1"))
	if st := h.VPP.Snapshot(); len(st.VhostUsers) != 0 {
		t.Errorf("vhost-user left: %+v", st.VhostUsers)
	}
}

func volKey(h *harness.Host, name string) string { return schema.VolumeKey(h.Name, name) }

func volStatusKey(h *harness.Host, name string) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindVolumeKey, Host: h.Name, Volume: name})
}

func TestVolumeLifecycle(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	v := &schema.Volume{Host: h.Name, Name: "volume0", Type: schema.VolumeBlk, Device: "vhostblk0",
		Root: h.VolumeRoot, Bdev: "Malloc-vhostblk0", Minor: 3,
		Malloc: &schema.MallocSpec{SizeBytes: 64 << 20, BlockSize: 4096}}
	// SPDK fails the controller creation twice: the agent retries.
	h.SPDK.FailNext("vhost_create_blk_controller", 2, -32603, "Internal error")
	rev := e.Put(t, map[string]schema.Object{volKey(h, "volume0"): v})
	s := harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, "volume0"), rev, harness.Ready[schema.VolumeStatus])

	snap := h.SPDK.Snapshot()
	if len(snap.Bdevs) != 1 || snap.Bdevs[0].Name != "Malloc-vhostblk0" || snap.Bdevs[0].NumBlocks != 16384 {
		t.Fatalf("bdevs = %+v, want Malloc-vhostblk0 of 16384 blocks", snap.Bdevs)
	}
	if len(snap.Controllers) != 1 || snap.Controllers[0].Ctrlr != "vhostblk0" || snap.Controllers[0].Bdev != "Malloc-vhostblk0" {
		t.Fatalf("controllers = %+v", snap.Controllers)
	}
	if got := snap.Calls["vhost_create_blk_controller"]; got < 3 {
		t.Errorf("vhost_create_blk_controller called %d times, want the 2 failures and a success", got)
	}
	dev := filepath.Join(h.VolumeRoot, "block", "devices", "vhostblk0")
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatalf("device node: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(uint64(st.Rdev)) != 241 || unix.Minor(uint64(st.Rdev)) != 3 {
		t.Errorf("device node %s: mode %o rdev %d:%d, want block 241:3", dev, st.Mode, unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	}
	if s.DevicePath != dev || !isSocket(s.SocketPath) {
		t.Errorf("status %+v: device path or socket wrong", s)
	}

	e.Delete(t, volKey(h, "volume0"))
	e.WaitGone(t, volStatusKey(h, "volume0"))
	snap = h.SPDK.Snapshot()
	if len(snap.Bdevs)+len(snap.Controllers) != 0 {
		t.Errorf("SPDK left %+v", snap)
	}
	if _, err := os.Lstat(dev); err == nil {
		t.Error("device node left behind")
	}
}

func TestMetricsAndHealth(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	rev := e.Put(t, map[string]schema.Object{ifKey(h, "c1", "net1"): memifIntent(h, "c1", "net1", 0)})
	waitIfReady(t, e, h, "c1", "net1", rev)
	body := harness.HTTPGet(t, "http://"+h.MetricsAddr+"/metrics")
	for _, want := range []string{
		`uspace_reconciles_total{controller="interfaces",result="ok"}`,
		`uspace_queue_depth{controller="volumes"}`,
		`uspace_watch_lag_revisions`,
		`uspace_convergence_seconds_count{controller="interfaces"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if body := harness.HTTPGet(t, "http://"+h.MetricsAddr+path); body == "" {
			t.Errorf("%s empty", path)
		}
	}
}

// Network namespace helpers lock a thread and let it exit; the harness's
// children must not die with that thread (Pdeathsig is per thread).
func TestAgentSurvivesNetnsThreads(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	for range 3 {
		n, err := testutils.NewNS()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(); _ = testutils.UnmountNS(n) })
	}
	rev := e.Put(t, map[string]schema.Object{ifKey(h, "c1", "net1"): memifIntent(h, "c1", "net1", 0)})
	waitIfReady(t, e, h, "c1", "net1", rev)
	select {
	case <-h.Agent.Exited():
		t.Fatalf("host agent died:\n%s", h.Agent.Output())
	default:
	}
}
