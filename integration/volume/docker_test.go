package volume_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/harness"
)

// docker runs the docker CLI and returns its stdout; on failure the test
// fails with stderr.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	start := time.Now()
	out, err := dockerErr(args...)
	t.Logf("docker %s (%v)", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func dockerErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// buildImage makes a FROM-scratch image holding one static binary,
// testdata/statnode, with docker import (no registry, no base image).
func buildImage(t *testing.T, tag string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "statnode")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/statnode/main.go")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build statnode: %v\n%s", err, out)
	}
	tarball := filepath.Join(dir, "image.tar")
	if out, err := exec.Command("tar", "-C", dir, "-cf", tarball, "statnode").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	docker(t, "import", "--change", `ENTRYPOINT ["/statnode"]`, tarball, tag)
	t.Cleanup(func() { dockerErr("image", "rm", "-f", tag) })
}

// TestDockerCLI runs the seed README's usage section command for command
// through the real docker CLI and daemon, with the plugin under a test name
// (a real vhostuser-docker-volume install keeps its socket): volume0 exactly
// as the seed (its bdev made by hand first), the others with -o size so
// that the host agent creates their bdevs instead of a hand-run rpc.py. The
// container runs with runc: it sees the volume as the block device node
// the driver returned (with Kata it would become a vhost-user-blk disk).
func TestDockerCLI(t *testing.T) {
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("no Docker daemon reachable (docker info: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	// One fixed name: the daemon never forgets a v1 plugin it has used, and
	// every call that lists volumes then waits ~15s for each one whose
	// socket is gone, so a name per run would slow the daemon down for good.
	const plugin = "uspace-test-vhostuser"
	const image = plugin + ":latest"
	vols := []string{"volume0", "volume1", "volume2"}
	sock := filepath.Join("/run/docker/plugins", plugin+".sock")
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		t.Skipf("%s is served by another process (another run of this test?)", sock)
	}

	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	startDriver(t, e, h, "/run/docker/plugins", plugin)
	created := map[string]bool{}
	t.Cleanup(func() {
		// Whatever failed, leave no volume behind in Docker (the driver is
		// still running: cleanups run in reverse order).
		for v := range created {
			dockerErr("volume", "rm", "-f", v)
		}
	})
	buildImage(t, image)
	devices := filepath.Join(h.VolumeRoot, "block", "devices")

	// The seed's way for volume0: the bdev made by hand in SPDK (rpc.py
	// bdev_malloc_create ... -b vhostblk0), then the seed's command as it
	// stands. The others ask the host agent for the bdev with -o size.
	rpc(t, h.SPDKSocket, "bdev_malloc_create", map[string]any{"num_blocks": 16384, "block_size": 4096, "name": "vhostblk0"})

	// Create 3 volumes
	for i, v := range vols {
		args := []string{"volume", "create", "--driver", plugin, "--name", v,
			"--opt", fmt.Sprintf("device=vhostblk%d", i), "--opt", "type=blk"}
		if i > 0 {
			args = append(args, "--opt", "size=64MiB")
		}
		// No listing beforehand to find a clash: with a stale plugin in the
		// daemon every listing costs 15s. Docker refuses a name taken by
		// another driver, and only what this test created is removed.
		if _, err := dockerErr(args...); err != nil {
			// Docker: "driver 'local' already has volume 'volume0': volume name must be unique".
			if msg := err.Error(); strings.Contains(msg, "must be unique") || strings.Contains(msg, "already") {
				t.Skipf("a Docker volume %s of another driver exists on this machine; not touching it (%v)", v, err)
			}
			t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
		}
		created[v] = true
	}
	for i, v := range vols {
		if iv, _ := intent(t, e, h, v); iv == nil || iv.Minor != uint32(i) || iv.Device != fmt.Sprintf("vhostblk%d", i) {
			t.Fatalf("%s: intent %+v", v, iv)
		}
	}

	// Delete a volume
	docker(t, "volume", "rm", "volume1")
	delete(created, "volume1")
	if iv, _ := intent(t, e, h, "volume1"); iv != nil || status(t, e, h, "volume1") != nil {
		t.Fatal("volume1 left in etcd")
	}

	// List all volumes
	ls := docker(t, "volume", "ls", "--format", "{{.Driver}} {{.Name}}")
	var mine []string
	for _, line := range strings.Split(strings.TrimSpace(ls), "\n") {
		if strings.HasPrefix(line, plugin+" ") {
			mine = append(mine, strings.TrimPrefix(line, plugin+" "))
		}
	}
	if !slices.Equal(mine, []string{"volume0", "volume2"}) {
		t.Fatalf("docker volume ls:\n%s\nwant volume0 and volume2 of driver %s", ls, plugin)
	}

	// Inspect a volume
	var inspected []struct {
		Driver, Name, Mountpoint string
		Status                   map[string]any
	}
	if err := json.Unmarshal([]byte(docker(t, "volume", "inspect", "volume0")), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("docker volume inspect: %v %+v", err, inspected)
	}
	vi := inspected[0]
	if vi.Driver != plugin || vi.Mountpoint != filepath.Join(devices, "vhostblk0") ||
		vi.Status["type"] != "blk" || vi.Status["major"] != float64(241) || vi.Status["minor"] != float64(0) || vi.Status["device"] != "vhostblk0" {
		t.Fatalf("docker volume inspect: %+v", vi)
	}

	// Run docker with one vhost-user volume (runc here: no Kata on build machines)
	out := docker(t, "run", "--rm", "--volume-driver="+plugin, "-v", "volume0:/data", image, "/data")
	if strings.TrimSpace(out) != "/data: block 241:0" {
		t.Fatalf("container sees %q, want the device node /data: block 241:0", out)
	}
	assertNode(t, filepath.Join(devices, "vhostblk0"), 241, 0)
	if iv, _ := intent(t, e, h, "volume0"); len(iv.Mounts) != 0 {
		t.Fatalf("container gone but mounts %v recorded", iv.Mounts)
	}

	// The seed again: after rm volume1, the next blk volume gets minor 1 back.
	docker(t, "volume", "create", "--driver", plugin, "--name", "volume1", "--opt", "device=vhostblk1", "--opt", "size=64MiB")
	created["volume1"] = true
	if iv, _ := intent(t, e, h, "volume1"); iv == nil || iv.Minor != 1 {
		t.Fatalf("recreated volume1: %+v, want minor 1", iv)
	}

	for _, v := range vols {
		docker(t, "volume", "rm", v)
		delete(created, v)
	}
	if keys := hostKeys(t, e, h); len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
	// What uspace made is gone; the hand-made bdev is the operator's.
	if snap := h.SPDK.Snapshot(); len(snap.Controllers) != 0 || len(snap.Bdevs) != 1 || snap.Bdevs[0].Name != "vhostblk0" {
		t.Fatalf("SPDK left %+v, want only the hand-made bdev vhostblk0", snap)
	}
	entries, _ := os.ReadDir(devices)
	if len(entries) != 0 {
		t.Fatalf("device nodes left: %v", entries)
	}
}
