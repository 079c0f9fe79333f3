package volume_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
)

// TestHandMadeObjects covers issue 18's numbered defects over the plugin
// protocol (what Docker sends), against the simulator and the real SPDK:
// uspace adopts what was made by hand, refuses before creating anything,
// deletes only what it made, repairs what it owns and reports what it
// adopted, and never hands out a minor a node on disk holds.
func TestHandMadeObjects(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { handMadeObjects(t, b.opts) })
	}
}

func handMadeObjects(t *testing.T, opts harness.HostOptions) {
	e := harness.StartEtcd(t)
	h := startHostOn(t, e, opts)
	d := startDriver(t, e, h, harness.ShortTempDir(t), "uspace-test")
	devices := filepath.Join(h.VolumeRoot, "block", "devices")

	// Defect 3: a node left on disk by another tool (the seed forgot its
	// volumes on restart) keeps its minor; Kata takes the first match.
	t.Run("minor skips nodes on disk", func(t *testing.T) {
		stale := filepath.Join(devices, "hxstale")
		if err := unix.Mknod(stale, unix.S_IFBLK|0o600, int(unix.Mkdev(241, 0))); err != nil {
			t.Fatal(err)
		}
		d.call(t, "/VolumeDriver.Create", createReq{"fresh", map[string]string{"size": "16MiB"}}, nil)
		if v, _ := intent(t, e, h, "fresh"); v == nil || v.Minor != 1 {
			t.Fatalf("intent %+v, want minor 1 (241:0 is hxstale's)", v)
		}
		var m struct{ Mountpoint string }
		d.call(t, "/VolumeDriver.Mount", idReq{"fresh", "m1"}, &m)
		assertNode(t, m.Mountpoint, 241, 1)
		assertNode(t, stale, 241, 0)
		d.call(t, "/VolumeDriver.Unmount", idReq{"fresh", "m1"}, nil)
		d.call(t, "/VolumeDriver.Remove", nameReq{"fresh"}, nil)
		assertNode(t, stale, 241, 0)
		os.Remove(stale)
	})

	seedRPC(t, h, "bdev_malloc_create", "64", "4096", "-b", "Malloc5")
	seedRPC(t, h, "vhost_create_blk_controller", "vhostblk5", "Malloc5")
	handMade := spdkState(t, h)

	// Defects 2 and 4: with -o size on a hand-made controller's name the
	// create is refused before anything is made, is not retried, and rm
	// leaves the controller serving whatever it serves.
	t.Run("refused create leaves nothing and stops", func(t *testing.T) {
		d.call(t, "/VolumeDriver.Create", createReq{"refused", map[string]string{"device": "vhostblk5", "size": "64MiB"}}, nil)
		d.fail(t, "/VolumeDriver.Mount", idReq{"refused", "m1"}, "controller vhostblk5 already exists in SPDK and was not created by uspace")
		if got := spdkState(t, h); got != handMade {
			t.Fatalf("a refused create changed SPDK:\n%s\nwas:\n%s", got, handMade)
		}
		if !absent(filepath.Join(devices, "vhostblk5")) {
			t.Fatal("a refused volume got a device node")
		}
		// No retries: the agent reconciles nothing more until something
		// changes (a retrying agent would re-run it with backoff). The
		// failed mount's own intent writes (its ID recorded, then taken
		// back) and the drift check's first look at the new volume are
		// changes: let them pass first.
		before := reconciles(t, h)
		for range 5 {
			time.Sleep(2500 * time.Millisecond)
			now := reconciles(t, h)
			if now == before {
				break
			}
			before = now
		}
		time.Sleep(3 * time.Second)
		if after := reconciles(t, h); after != before {
			t.Fatalf("the refused volume was reconciled %v more times", after-before)
		}
		d.call(t, "/VolumeDriver.Remove", nameReq{"refused"}, nil)
		if got := spdkState(t, h); got != handMade {
			t.Fatalf("removing a refused volume changed SPDK:\n%s\nwas:\n%s", got, handMade)
		}
	})

	// Defect 2: a volume that never became ready (wrong type for the
	// hand-made controller) is removed without touching it.
	t.Run("never ready volume", func(t *testing.T) {
		d.call(t, "/VolumeDriver.Create", createReq{"wrongtype", map[string]string{"device": "vhostblk5", "type": "scsi"}}, nil)
		d.fail(t, "/VolumeDriver.Mount", idReq{"wrongtype", "m1"}, "controller vhostblk5 in SPDK is a blk controller, the volume has type=scsi")
		d.call(t, "/VolumeDriver.Remove", nameReq{"wrongtype"}, nil)
		if got := spdkState(t, h); got != handMade {
			t.Fatalf("removing a never-ready volume changed SPDK:\n%s\nwas:\n%s", got, handMade)
		}
	})

	// Defect 1: nothing to adopt and no size: the error names both ways
	// out and reaches the mount (docker run) at once.
	t.Run("nothing to adopt names the ways out", func(t *testing.T) {
		d.call(t, "/VolumeDriver.Create", createReq{"empty", map[string]string{"device": "nothing"}}, nil)
		d.fail(t, "/VolumeDriver.Mount", idReq{"empty", "m1"},
			"SPDK has no controller nothing to adopt and the volume has no -o size: either create the volume with -o size=<bytes>")
		d.fail(t, "/VolumeDriver.Mount", idReq{"empty", "m1"}, "rpc.py bdev_malloc_create 64 4096 -b Malloc0; rpc.py vhost_create_blk_controller nothing Malloc0")
		d.call(t, "/VolumeDriver.Remove", nameReq{"empty"}, nil)
	})

	// Defect 5: a bdev the volume owns, deleted by hand, is seen and
	// re-created, and the controller re-attached; also when the agent was
	// down meanwhile.
	t.Run("drift of owned objects is repaired", func(t *testing.T) {
		d.call(t, "/VolumeDriver.Create", createReq{"owned", map[string]string{"size": "16MiB"}}, nil)
		var m struct{ Mountpoint string }
		d.call(t, "/VolumeDriver.Mount", idReq{"owned", "m1"}, &m)
		seedRPC(t, h, "bdev_malloc_delete", "Malloc-owned")
		waitServes(t, h, "owned", "Malloc-owned")
		h.Agent.Kill()
		seedRPC(t, h, "bdev_malloc_delete", "Malloc-owned")
		h.RestartAgent(t)
		waitServes(t, h, "owned", "Malloc-owned")
		d.call(t, "/VolumeDriver.Mount", idReq{"owned", "m2"}, &m)
		d.call(t, "/VolumeDriver.Unmount", idReq{"owned", "m1"}, nil)
		d.call(t, "/VolumeDriver.Unmount", idReq{"owned", "m2"}, nil)
		d.call(t, "/VolumeDriver.Remove", nameReq{"owned"}, nil)
		if got := spdkState(t, h); got != handMade {
			t.Fatalf("removing an owned volume left:\n%s\nwant:\n%s", got, handMade)
		}
	})

	// An adopted controller removed by hand is reported, not re-created;
	// made again by hand, it is adopted again.
	t.Run("adopted controller removed by hand", func(t *testing.T) {
		d.call(t, "/VolumeDriver.Create", createReq{"adopted", map[string]string{"device": "vhostblk5"}}, nil)
		var m struct{ Mountpoint string }
		d.call(t, "/VolumeDriver.Mount", idReq{"adopted", "m1"}, &m)
		assertNode(t, m.Mountpoint, 241, 0)
		seedRPC(t, h, "vhost_delete_controller", "vhostblk5")
		harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, "adopted"), 0, func(s *schema.VolumeStatus) bool {
			return strings.Contains(s.Error, "controller vhostblk5, adopted by this volume as made by hand, is no longer in SPDK")
		})
		if _, err := rpcErr(h.SPDKSocket, "vhost_get_controllers", map[string]any{"name": "vhostblk5"}); err == nil {
			t.Fatal("uspace re-created a controller it had adopted")
		}
		seedRPC(t, h, "vhost_create_blk_controller", "vhostblk5", "Malloc5")
		harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, "adopted"), 0, func(s *schema.VolumeStatus) bool {
			return s.Ready && s.Adopted
		})
		d.call(t, "/VolumeDriver.Unmount", idReq{"adopted", "m1"}, nil)
		d.call(t, "/VolumeDriver.Remove", nameReq{"adopted"}, nil)
		if got := spdkState(t, h); got != handMade {
			t.Fatalf("removing an adopted volume changed SPDK:\n%s\nwas:\n%s", got, handMade)
		}
	})

	// Issue 20 item 5: a root the agent was not configured with is refused
	// before SPDK or the file system is touched.
	t.Run("root outside --volume-root", func(t *testing.T) {
		other := harness.ShortTempDir(t)
		for _, sub := range []string{"block/sockets", "block/devices"} {
			if err := os.MkdirAll(filepath.Join(other, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		d.call(t, "/VolumeDriver.Create", createReq{"elsewhere", map[string]string{"path": other, "size": "16MiB"}}, nil)
		d.fail(t, "/VolumeDriver.Mount", idReq{"elsewhere", "m1"}, "lies outside the volume roots")
		if got := spdkState(t, h); got != handMade {
			t.Fatalf("a volume outside the roots changed SPDK:\n%s\nwas:\n%s", got, handMade)
		}
		if entries, _ := os.ReadDir(filepath.Join(other, "block", "devices")); len(entries) != 0 {
			t.Fatalf("files made outside the roots: %v", entries)
		}
		d.call(t, "/VolumeDriver.Remove", nameReq{"elsewhere"}, nil)
	})

	// The reply to a create lost (SPDK made the bdev): the next pass finds
	// a bdev of that name and knows it for its own by its UUID.
	t.Run("lost reply to a create", func(t *testing.T) {
		if h.SPDK == nil {
			t.Skip("fault injection needs the simulator")
		}
		h.SPDK.DropNext("bdev_malloc_create", 1, true)
		d.call(t, "/VolumeDriver.Create", createReq{"lost", map[string]string{"size": "16MiB"}}, nil)
		d.call(t, "/VolumeDriver.Mount", idReq{"lost", "m1"}, nil)
		if st := status(t, e, h, "lost"); st == nil || !st.OwnsBdev || !st.OwnsController || st.Bdev != "Malloc-lost" {
			t.Fatalf("status %+v", st)
		}
		d.call(t, "/VolumeDriver.Unmount", idReq{"lost", "m1"}, nil)
		d.call(t, "/VolumeDriver.Remove", nameReq{"lost"}, nil)
		if got := spdkState(t, h); got != handMade {
			t.Fatalf("after removing the volume:\n%s\nwant:\n%s", got, handMade)
		}
	})

	// Out of memory is SPDK refusing: reported, not retried, nothing left.
	t.Run("out of memory", func(t *testing.T) {
		d.call(t, "/VolumeDriver.Create", createReq{"huge", map[string]string{"size": "4GiB"}}, nil)
		d.fail(t, "/VolumeDriver.Mount", idReq{"huge", "m1"}, "SPDK has no memory left for a 4294967296-byte malloc bdev Malloc-huge")
		if got := spdkState(t, h); got != handMade {
			t.Fatalf("a refused create changed SPDK:\n%s\nwas:\n%s", got, handMade)
		}
		d.call(t, "/VolumeDriver.Remove", nameReq{"huge"}, nil)
	})

	// Defect 6: the operators' way out for a mount ID no container uses.
	t.Run("uspacectl volume unmount", func(t *testing.T) {
		d.call(t, "/VolumeDriver.Create", createReq{"stuck", map[string]string{"size": "16MiB"}}, nil)
		d.call(t, "/VolumeDriver.Mount", idReq{"stuck", "lost"}, nil)
		d.fail(t, "/VolumeDriver.Remove", nameReq{"stuck"}, "uspacectl volume unmount --host node1 stuck <mount ID>")
		ctl := func(args ...string) (string, error) {
			args = append(args, "--etcd-endpoints", strings.Join(e.Endpoints, ","))
			out, err := exec.Command(binaries.Path(t, "uspacectl"), args...).CombinedOutput()
			return string(out), err
		}
		if out, err := ctl("volume", "unmount", "--host", "node1", "stuck", "nosuchid"); err == nil || !strings.Contains(out, "volume stuck has no mount ID nosuchid") {
			t.Fatalf("unknown ID: %v %s", err, out)
		}
		if out, err := ctl("volume", "unmount", "--host", "node1", "stuck", "lost"); err != nil || !strings.Contains(out, "volume stuck on host node1: mounts [], mounting []") {
			t.Fatalf("uspacectl volume unmount: %v %s", err, out)
		}
		d.call(t, "/VolumeDriver.Remove", nameReq{"stuck"}, nil)
	})

	if got := spdkState(t, h); got != handMade {
		t.Fatalf("SPDK at the end:\n%s\nwant:\n%s", got, handMade)
	}
}

// reconciles sums the host agent's volume reconciles, from its metrics.
func reconciles(t *testing.T, h *harness.Host) float64 {
	t.Helper()
	var n float64
	sc := bufio.NewScanner(strings.NewReader(harness.HTTPGet(t, "http://"+h.MetricsAddr+"/metrics")))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, `uspace_reconciles_total{controller="volumes"`) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			n += v
		}
	}
	return n
}

// waitServes waits until SPDK's blk controller ctrlr serves bdev again.
func waitServes(t *testing.T, h *harness.Host, ctrlr, bdev string) {
	t.Helper()
	deadline := time.Now().Add(harness.WaitTimeout)
	var last string
	for time.Now().Before(deadline) {
		res, err := rpcErr(h.SPDKSocket, "vhost_get_controllers", map[string]any{"name": ctrlr})
		last = fmt.Sprint(string(res), err)
		var ctrls []struct {
			BackendSpecific struct {
				Block struct{ Bdev *string } `json:"block"`
			} `json:"backend_specific"`
		}
		if err == nil && json.Unmarshal(res, &ctrls) == nil && len(ctrls) == 1 {
			if b := ctrls[0].BackendSpecific.Block.Bdev; b != nil && *b == bdev {
				if _, err := rpcErr(h.SPDKSocket, "bdev_get_bdevs", map[string]any{"name": bdev}); err == nil {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("controller %s does not serve bdev %s again: %s\nhost agent:\n%s", ctrlr, bdev, last, h.Agent.Output())
}
