package volume_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/spdksim"
	"github.com/uspace-io/uspace/schema"
)

// TestPluginProtocol is Docker's side of a volume's life, over the plugin
// socket: bad input rejected with nothing written, create, driver crash,
// mounts counted per ID across a second crash, remove refused while
// mounted, and SPDK, the vhost-user directory and the status keys checked
// at every step.
func TestPluginProtocol(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	devices := filepath.Join(h.VolumeRoot, "block", "devices")
	sockets := filepath.Join(h.VolumeRoot, "block", "sockets")
	// The driver lays out its root at start, as the seed did; the test
	// host made only the sockets directory (SPDK's).
	if _, err := os.Stat(devices); err == nil {
		t.Fatalf("%s exists before the driver started", devices)
	}
	d := startDriver(t, e, h, harness.ShortTempDir(t), "uspace-test")
	if fi, err := os.Stat(devices); err != nil || !fi.IsDir() {
		t.Fatalf("the driver did not create %s: %v", devices, err)
	}

	var caps struct{ Capabilities struct{ Scope string } }
	d.call(t, "/VolumeDriver.Capabilities", struct{}{}, &caps)
	if caps.Capabilities.Scope != "local" {
		t.Fatalf("scope %q", caps.Capabilities.Scope)
	}

	t.Run("bad input is rejected and nothing written", func(t *testing.T) {
		for _, tc := range []struct {
			req  createReq
			want string
		}{
			{createReq{Name: "a"}, `invalid volume name "a"`},
			{createReq{Name: "../etc"}, `invalid volume name "../etc"`},
			{createReq{Name: "x/y"}, `invalid volume name "x/y"`},
			{createReq{Name: "volume0", Opts: map[string]string{"tpye": "blk"}}, `unknown option "tpye"`},
			{createReq{Name: "volume0", Opts: map[string]string{"type": "nvme"}}, `invalid option type "nvme": must be blk or scsi`},
			{createReq{Name: "volume0", Opts: map[string]string{"device": "../x"}}, `invalid option device "../x"`},
			{createReq{Name: "volume0", Opts: map[string]string{"path": "relative"}}, `invalid option path "relative": must be an absolute path`},
			{createReq{Name: "volume0", Opts: map[string]string{"path": "/nonexistent"}}, `/nonexistent is not a valid vhost-user directory`},
			{createReq{Name: "volume0", Opts: map[string]string{"size": "64 parsecs"}}, `invalid option size "64 parsecs": unknown unit`},
			{createReq{Name: "volume0", Opts: map[string]string{"size": "1000"}}, `not a multiple of the block size 4096`},
			{createReq{Name: "volume0", Opts: map[string]string{"blocksize": "512"}}, `only applies together with -o size`},
			{createReq{Name: "volume0", Opts: map[string]string{"device": strings.Repeat("d", 100)}}, `a unix socket path holds at most 107`},
		} {
			d.fail(t, "/VolumeDriver.Create", tc.req, tc.want)
		}
		d.fail(t, "/VolumeDriver.Mount", idReq{"volume0", "m1"}, "volume volume0 does not exist")
		d.fail(t, "/VolumeDriver.Get", nameReq{"volume0"}, "volume volume0 does not exist")
		if keys := hostKeys(t, e, h); len(keys) != 0 {
			t.Fatalf("rejected creates wrote %v", keys)
		}
		if snap := h.SPDK.Snapshot(); len(snap.Bdevs)+len(snap.Controllers) != 0 {
			t.Fatalf("SPDK touched: %+v", snap)
		}
	})

	// The seed's usage, plus -o size so the agent makes the bdev, and a
	// second volume on a bdev made by hand as the seed README does.
	d.call(t, "/VolumeDriver.Create", createReq{"volume0", map[string]string{"device": "vhostblk0", "type": "blk", "size": "64MiB"}}, nil)
	d.call(t, "/VolumeDriver.Create", createReq{"volume0", map[string]string{"device": "vhostblk0", "type": "BLK", "size": "65536KiB"}}, nil) // same options: no-op
	d.fail(t, "/VolumeDriver.Create", createReq{"volume0", map[string]string{"device": "vhostblk9"}}, "volume volume0 already exists with other options")
	d.fail(t, "/VolumeDriver.Create", createReq{"other", map[string]string{"device": "vhostblk0"}}, "device vhostblk0 is already referenced by volume volume0")
	rpc(t, h.SPDKSocket, "bdev_malloc_create", map[string]any{"num_blocks": 16384, "block_size": 4096, "name": "Malloc1"})
	d.call(t, "/VolumeDriver.Create", createReq{"volume1", map[string]string{"device": "vhostblk1", "bdev": "Malloc1"}}, nil)
	d.call(t, "/VolumeDriver.Create", createReq{"volume2", map[string]string{"type": "scsi", "bdev": "nosuchbdev"}}, nil)
	for name, minor := range map[string]uint32{"volume0": 0, "volume1": 1, "volume2": 0} {
		if v, _ := intent(t, e, h, name); v == nil || v.Minor != minor {
			t.Fatalf("%s: intent %+v, want minor %d", name, v, minor)
		}
	}

	// Driver killed between create and mount: nothing is lost.
	d.restart(t)
	var list struct{ Volumes []volumeInfo }
	d.call(t, "/VolumeDriver.List", struct{}{}, &list)
	var names []string
	for _, v := range list.Volumes {
		names = append(names, v.Name+"="+v.Mountpoint)
	}
	want := []string{"volume0=" + devices + "/vhostblk0", "volume1=" + devices + "/vhostblk1", "volume2=" + devices + "/volume2"}
	if !slices.Equal(names, want) {
		t.Fatalf("list %v, want %v", names, want)
	}

	t.Run("mount waits for the agent", func(t *testing.T) {
		var m struct{ Mountpoint string }
		d.call(t, "/VolumeDriver.Mount", idReq{"volume0", "m1"}, &m)
		if m.Mountpoint != filepath.Join(devices, "vhostblk0") {
			t.Fatalf("mountpoint %q", m.Mountpoint)
		}
		// Mount returned only after the agent had applied it: no waiting here.
		assertNode(t, m.Mountpoint, 241, 0)
		if !isSocket(filepath.Join(sockets, "vhostblk0")) {
			t.Fatal("no vhost-user socket")
		}
		// The intent's last write moved m1 from mounting to mounted,
		// after the agent had reported ready.
		v, rev := intent(t, e, h, "volume0")
		if s := harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, "volume0"), rev, harness.Ready); s.Minor != 0 || s.Major != 241 || !s.OwnsBdev || !s.OwnsController || s.Adopted {
			t.Fatalf("status %+v at intent revision %d", s, rev)
		}
		if !slices.Equal(v.Mounts, []string{"m1"}) {
			t.Fatalf("mounts %v", v.Mounts)
		}
		snap := h.SPDK.Snapshot()
		if !hasBdev(snap, "Malloc-vhostblk0", 4096, 16384) || !hasCtrlr(snap, "vhostblk0", "blk", "Malloc-vhostblk0") {
			t.Fatalf("SPDK state %+v", snap)
		}
		d.call(t, "/VolumeDriver.Mount", idReq{"volume0", "m2"}, &m)
	})

	t.Run("mounts survive a driver crash", func(t *testing.T) {
		d.restart(t)
		var g struct{ Volume volumeInfo }
		d.call(t, "/VolumeDriver.Get", nameReq{"volume0"}, &g)
		st := g.Volume.Status
		if st["mounts"] != float64(2) || st["minor"] != float64(0) || st["major"] != float64(241) || st["state"] != "ready" ||
			st["device"] != "vhostblk0" || st["bdev"] != "Malloc-vhostblk0" || st["size"] != float64(64<<20) {
			t.Fatalf("status %v", st)
		}
		if g.Volume.Mountpoint != filepath.Join(devices, "vhostblk0") || g.Volume.CreatedAt == "" {
			t.Fatalf("get %+v", g.Volume)
		}
		var p struct{ Mountpoint string }
		d.call(t, "/VolumeDriver.Path", nameReq{"volume0"}, &p)
		if p.Mountpoint != g.Volume.Mountpoint {
			t.Fatalf("path %q", p.Mountpoint)
		}
	})

	t.Run("remove only when the last mount is gone", func(t *testing.T) {
		d.call(t, "/VolumeDriver.Unmount", idReq{"volume0", "m1"}, nil)
		d.fail(t, "/VolumeDriver.Unmount", idReq{"volume0", "m1"}, "volume volume0 is not mounted with ID m1")
		d.fail(t, "/VolumeDriver.Remove", nameReq{"volume0"}, "volume volume0 is still in use (1 mount(s): m2)")
		d.call(t, "/VolumeDriver.Unmount", idReq{"volume0", "m2"}, nil)
		d.call(t, "/VolumeDriver.Remove", nameReq{"volume0"}, nil)
		// Remove returned after the agent tore it all down.
		if v, _ := intent(t, e, h, "volume0"); v != nil {
			t.Fatal("intent left")
		}
		if s := status(t, e, h, "volume0"); s != nil {
			t.Fatalf("status left: %+v", s)
		}
		if !absent(filepath.Join(devices, "vhostblk0")) || !absent(filepath.Join(sockets, "vhostblk0")) {
			t.Fatal("device node or socket left")
		}
		snap := h.SPDK.Snapshot()
		if hasBdev(snap, "Malloc-vhostblk0", 0, 0) || hasCtrlr(snap, "vhostblk0", "", "") {
			t.Fatalf("SPDK left %+v", snap)
		}
		d.fail(t, "/VolumeDriver.Get", nameReq{"volume0"}, "volume volume0 does not exist")
	})

	t.Run("hand-made bdev is used and kept", func(t *testing.T) {
		var m struct{ Mountpoint string }
		d.call(t, "/VolumeDriver.Mount", idReq{"volume1", "c1"}, &m)
		assertNode(t, m.Mountpoint, 241, 1)
		if !hasCtrlr(h.SPDK.Snapshot(), "vhostblk1", "blk", "Malloc1") {
			t.Fatalf("SPDK %+v", h.SPDK.Snapshot())
		}
		d.call(t, "/VolumeDriver.Unmount", idReq{"volume1", "c1"}, nil)
		d.call(t, "/VolumeDriver.Remove", nameReq{"volume1"}, nil)
		snap := h.SPDK.Snapshot()
		if !hasBdev(snap, "Malloc1", 4096, 16384) || hasCtrlr(snap, "vhostblk1", "", "") {
			t.Fatalf("SPDK %+v: want Malloc1 kept, vhostblk1 gone", snap)
		}
	})

	t.Run("missing bdev is named", func(t *testing.T) {
		start := time.Now()
		d.fail(t, "/VolumeDriver.Mount", idReq{"volume2", "c1"}, `bdev nosuchbdev does not exist in SPDK`)
		if time.Since(start) > 10*time.Second {
			t.Errorf("mount took %v to report a lasting error", time.Since(start))
		}
		if v, _ := intent(t, e, h, "volume2"); len(v.Mounts) != 0 {
			t.Fatalf("failed mount left mounts %v", v.Mounts)
		}
		var g struct{ Volume volumeInfo }
		d.call(t, "/VolumeDriver.Get", nameReq{"volume2"}, &g)
		if g.Volume.Status["state"] != "error" || !strings.Contains(g.Volume.Status["error"].(string), "nosuchbdev") {
			t.Fatalf("status %v", g.Volume.Status)
		}
		d.call(t, "/VolumeDriver.Remove", nameReq{"volume2"}, nil)
	})

	t.Run("SIGTERM removes the socket", func(t *testing.T) {
		if err := d.proc.Stop(10 * time.Second); err != nil {
			t.Fatalf("exit: %v\n%s", err, d.proc.Output())
		}
		if !absent(d.socket) {
			t.Fatal("socket left after SIGTERM")
		}
	})
	if keys := hostKeys(t, e, h); len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
}

func hasBdev(s spdksim.Snapshot, name string, blockSize uint32, blocks uint64) bool {
	for _, b := range s.Bdevs {
		if b.Name == name && (blockSize == 0 || b.BlockSize == blockSize && b.NumBlocks == blocks) {
			return true
		}
	}
	return false
}

func hasCtrlr(s spdksim.Snapshot, name, typ, bdev string) bool {
	for _, c := range s.Controllers {
		if c.Ctrlr == name && (typ == "" || c.Type == typ && c.Bdev == bdev) {
			return true
		}
	}
	return false
}
