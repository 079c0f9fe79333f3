package spdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/spdksim"
)

// TestAgainstSimProcess drives the uspace-spdksim binary as a separate
// process over real sockets, with faults injected through its control
// socket and signals.
func TestAgainstSimProcess(t *testing.T) {
	bin := binaries.Path(t, "uspace-spdksim")
	dir := t.TempDir()
	sock := filepath.Join(dir, "spdk.sock")
	ctl := filepath.Join(dir, "ctl.sock")
	dump := filepath.Join(dir, "state.json")
	vdir := filepath.Join(dir, "sockets")
	if err := os.Mkdir(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-r", sock, "-S", vdir, "--control-socket", ctl, "--state-dump", dump)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("uspace-spdksim stderr:\n%s", stderr.String())
		}
	})
	waitFor(t, "RPC socket", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	ctx := ctxT(t)
	c := spdk.New(sock)
	defer c.Close()
	control := func(req spdksim.ControlRequest) json.RawMessage {
		t.Helper()
		res, err := spdksim.ControlCall(ctx, ctl, req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	v := must(c.SpdkGetVersion(ctx))(t)
	if v.Fields.Major != 24 || v.Fields.Minor != 9 {
		t.Fatalf("version %+v", v)
	}
	must(mallocBdev(ctx, c, "Malloc0", 64<<20, 4096))(t)
	must(blkController(ctx, c, "vhostblk0", "Malloc0", false))(t)
	must(mallocBdev(ctx, c, "Malloc1", 64<<20, 4096))(t)
	must(scsiController(ctx, c, "vhostscsi0", "Malloc1"))(t)
	for _, n := range []string{"vhostblk0", "vhostscsi0"} {
		if !isSocket(filepath.Join(vdir, n)) {
			t.Fatalf("%s: no live socket", n)
		}
	}

	// --state-dump follows every change.
	waitFor(t, "state dump", func() bool {
		b, err := os.ReadFile(dump)
		var snap spdksim.Snapshot
		return err == nil && json.Unmarshal(b, &snap) == nil && len(snap.Controllers) == 2 && len(snap.Bdevs) == 2 &&
			snap.Controllers[1].Type == "scsi" && len(snap.Controllers[1].Targets) == 1
	})

	// Injected failure through the control socket: once, then success.
	control(spdksim.ControlRequest{Cmd: "fail", Method: "bdev_malloc_create", Count: 1, Code: -12, Message: "Cannot allocate memory"})
	_, err := mallocBdev(ctx, c, "Malloc2", 1<<20, 512)
	wantRPC(t, err, -12, "Cannot allocate memory", "bdev_malloc_create", "Malloc2")
	must(mallocBdev(ctx, c, "Malloc2", 1<<20, 512))(t)

	// Restart through the control socket: state gone, client reconnects.
	gen := c.Generation()
	control(spdksim.ControlRequest{Cmd: "restart"})
	if bdevs := must(c.BdevGetBdevs(ctx, "", 0))(t); len(bdevs) != 0 {
		t.Fatalf("state survived restart: %v", bdevs)
	}
	if c.Generation() != gen+1 {
		t.Fatalf("generation %d, want %d", c.Generation(), gen+1)
	}
	if _, err := os.Lstat(filepath.Join(vdir, "vhostblk0")); err != nil || isSocket(filepath.Join(vdir, "vhostblk0")) {
		t.Fatalf("want a stale vhostblk0 socket after a crash-restart: %v", err)
	}
	must(mallocBdev(ctx, c, "Malloc0", 64<<20, 4096))(t)
	must(blkController(ctx, c, "vhostblk0", "Malloc0", false))(t)
	if !isSocket(filepath.Join(vdir, "vhostblk0")) {
		t.Fatal("vhostblk0 not recreated")
	}

	// SIGHUP is a crash-restart too.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart on SIGHUP", func() bool {
		var snap spdksim.Snapshot
		return json.Unmarshal(control(spdksim.ControlRequest{Cmd: "snapshot"}), &snap) == nil && snap.Boot == 2
	})
	if _, err := c.GetController(ctx, "vhostblk0"); !spdk.IsNotFound(err) {
		t.Fatalf("after SIGHUP: %v", err)
	}
	must(mallocBdev(ctx, c, "Malloc0", 64<<20, 4096))(t)
	must(blkController(ctx, c, "vhostblk0", "Malloc0", false))(t)

	// SIGTERM: clean exit, sockets removed.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("exit: %v", waitErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	for _, p := range []string{sock, ctl, filepath.Join(vdir, "vhostblk0")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s not removed on SIGTERM: %v", p, err)
		}
	}
	if _, err := c.SpdkGetVersion(ctx); !errors.Is(err, spdk.ErrConnection) {
		t.Fatalf("after exit: %v", err)
	}
	var snap spdksim.Snapshot
	if b, err := os.ReadFile(dump); err != nil || json.Unmarshal(b, &snap) != nil || snap.Boot != 2 {
		t.Fatalf("final state dump: %v %+v", err, snap)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
