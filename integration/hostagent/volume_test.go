package hostagent_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/schema"
)

// spdkBackends are the SPDKs a volume test runs against: the simulator,
// and the real SPDK 24.09 where it is installed.
var spdkBackends = []struct {
	name string
	opts harness.HostOptions
}{
	{"spdksim", harness.HostOptions{}},
	{"spdk-24.09", harness.HostOptions{RealSPDK: true}},
}

// spdkClient is a test's own connection to h's SPDK, whichever SPDK h
// runs.
func spdkClient(t *testing.T, h *harness.Host) *spdk.Client {
	c := spdk.New(h.SPDKSocket)
	t.Cleanup(func() { c.Close() })
	return c
}

// spdkHolds lists SPDK's bdevs and controllers, as SPDK itself reports
// them.
func spdkHolds(t *testing.T, c *spdk.Client) (bdevs, ctrlrs []string) {
	t.Helper()
	// Generous: a real spdk_tgt polls a core of its own, slow on a
	// loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bs, err := c.BdevGetBdevs(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := c.VhostGetControllers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		bdevs = append(bdevs, b.Name)
	}
	for _, c := range cs {
		ctrlrs = append(ctrlrs, c.Ctrlr)
	}
	slices.Sort(bdevs)
	slices.Sort(ctrlrs)
	return bdevs, ctrlrs
}

// Issue 27 item 6: a volume's SPDK objects are created only once the
// status recording them as owned is in etcd. etcd runs out of space (its
// NOSPACE alarm: every write fails, reads and leases go on) right when the
// agent is about to record them (SPDK is held up meanwhile, so the record
// comes after): the record's write fails, and however often the agent
// tries again, SPDK gets nothing while etcd cannot write. The agent is then
// killed at that point; with etcd writable and the agent back, the volume
// converges, and once removed leaves nothing in SPDK.
func TestVolumeCreatedOnlyOnceRecorded(t *testing.T) {
	for _, b := range spdkBackends {
		t.Run(b.name, func(t *testing.T) { volumeCreatedOnlyOnceRecorded(t, b.opts) })
	}
}

func volumeCreatedOnlyOnceRecorded(t *testing.T, opts harness.HostOptions) {
	if opts.RealSPDK {
		realdp.NeedSPDK(t)
	}
	e := harness.StartEtcd(t)
	h := e.StartHostOn(t, "node1", opts)
	c := spdkClient(t, h)
	pause, resume := spdkPause(t, h)

	v := &schema.Volume{Host: h.Name, Name: "vol-blip", Type: schema.VolumeBlk, Device: "vhostblk6",
		Root: h.VolumeRoot, Bdev: "Malloc-vhostblk6", Minor: 6,
		Malloc: &schema.MallocSpec{SizeBytes: 16 << 20, BlockSize: 4096}}
	pause()
	rev := e.Put(t, map[string]schema.Object{volKey(h, v.Name): v})
	// The agent has the intent and waits on SPDK; etcd stops writing.
	time.Sleep(500 * time.Millisecond)
	noSpace(t, e, pb.AlarmRequest_ACTIVATE)
	resume()
	// Shorter than the registration's lease (harness.LeaseTTL): the
	// volume's record is what this is about.
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		if bdevs, ctrlrs := spdkHolds(t, c); len(bdevs)+len(ctrlrs) != 0 {
			t.Fatalf("SPDK got %v %v while etcd could not record them as the volume's\n%s", bdevs, ctrlrs, h.Agent.Output())
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !strings.Contains(h.Agent.Output(), "database space exceeded") {
		t.Fatalf("the agent never met the failing write:\n%s", h.Agent.Output())
	}
	h.Agent.Kill()
	noSpace(t, e, pb.AlarmRequest_DEACTIVATE)
	h.RestartAgent(t)
	st := harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, v.Name), rev, harness.Ready[schema.VolumeStatus])
	if !st.OwnsBdev || !st.OwnsController || st.ControllerID == "" {
		t.Fatalf("status %+v, want bdev and controller owned and the controller identified", st)
	}
	if bdevs, ctrlrs := spdkHolds(t, c); !slices.Equal(bdevs, []string{v.Bdev}) || !slices.Equal(ctrlrs, []string{v.Device}) {
		t.Fatalf("SPDK holds %v %v", bdevs, ctrlrs)
	}
	e.Delete(t, volKey(h, v.Name))
	e.WaitGone(t, volStatusKey(h, v.Name))
	if bdevs, ctrlrs := spdkHolds(t, c); len(bdevs)+len(ctrlrs) != 0 {
		t.Fatalf("the removed volume left %v %v in SPDK", bdevs, ctrlrs)
	}
}

// noSpace raises or clears etcd's NOSPACE alarm, as a full backend does:
// while raised every write fails at once.
func noSpace(t *testing.T, e *harness.Etcd, action pb.AlarmRequest_AlarmAction) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli := e.Store.Etcd()
	st, err := cli.Status(ctx, e.Endpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	req := &pb.AlarmRequest{Action: action, MemberID: st.Header.MemberId, Alarm: pb.AlarmType_NOSPACE}
	if _, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx, req); err != nil {
		t.Fatalf("alarm %v: %v", action, err)
	}
}

// spdkPause holds up h's SPDK: a real one is stopped (SIGSTOP), the
// simulator answers vhost_get_controllers (the first call of a volume's
// reconcile) only after a delay.
func spdkPause(t *testing.T, h *harness.Host) (pause, resume func()) {
	if h.RealSPDK != nil {
		return func() { h.RealSPDK.Pause(t) }, func() { h.RealSPDK.Resume(t) }
	}
	return func() { h.SPDK.SetLatency("vhost_get_controllers", 2*time.Second) }, h.SPDK.ClearFaults
}

// Issue 27 item 9: a volume value the agent refuses is terminal, whatever
// the status said before: after a transient error (SPDK unreachable,
// retrying) an intent naming a root outside --volume-root gets a status
// that is not retrying, so a writer fails at once instead of waiting out
// its timeout.
func TestRefusedVolumeIsNotRetrying(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	h.SPDK.DropNext("", 1000, false)
	v := &schema.Volume{Host: h.Name, Name: "vol-refused", Type: schema.VolumeBlk, Device: "vhostblk2",
		Root: h.VolumeRoot, Bdev: "Malloc-vhostblk2", Minor: 2,
		Malloc: &schema.MallocSpec{SizeBytes: 1 << 20, BlockSize: 512}}
	rev := e.Put(t, map[string]schema.Object{volKey(h, v.Name): v})
	harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, v.Name), rev, func(s *schema.VolumeStatus) bool {
		return s.Error != "" && s.Retrying
	})

	other := harness.ShortTempDir(t)
	for _, d := range []string{"block/sockets", "block/devices"} {
		if err := os.MkdirAll(filepath.Join(other, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	v.Root = other
	rev = e.Put(t, map[string]schema.Object{volKey(h, v.Name): v})
	st := harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, v.Name), rev, func(s *schema.VolumeStatus) bool {
		return strings.Contains(s.Error, "lies outside the volume roots")
	})
	if st.Retrying {
		t.Fatalf("status %+v: a refused value says retrying", st)
	}
	if got := st.OutcomeFor(rev); got != schema.OutcomeTerminal {
		t.Fatalf("outcome %v for %+v, want terminal", got, st)
	}
	h.SPDK.ClearFaults()
	e.Delete(t, volKey(h, v.Name))
	e.WaitGone(t, volStatusKey(h, v.Name))
	if snap := h.SPDK.Snapshot(); len(snap.Bdevs)+len(snap.Controllers) != 0 {
		t.Fatalf("SPDK: %+v", snap)
	}
}
