package spdk_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/integration/spdksim"
)

type env struct {
	sim *spdksim.Sim
	c   *spdk.Client
	dir string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	s, err := spdksim.Start(spdksim.Options{RPCSocket: filepath.Join(dir, "spdk.sock"), VhostDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := spdk.New(s.Addr(), spdk.WithDialTimeout(time.Second))
	t.Cleanup(func() { c.Close() })
	return &env{sim: s, c: c, dir: dir}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// must(f())(t) fails the test if f returned an error, else returns its value.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// wantRPC asserts err carries an SPDK error with this code and message and
// that its text names the method and the object.
func wantRPC(t *testing.T, err error, code int, msg, method, object string) {
	t.Helper()
	var re *spdk.RPCError
	if !errors.As(err, &re) {
		t.Fatalf("want *RPCError, got %v", err)
	}
	if re.Code != code || re.Message != msg || re.Method != method {
		t.Fatalf("got %+v, want %d %q from %s", re, code, msg, method)
	}
	if !strings.Contains(err.Error(), method) || !strings.Contains(err.Error(), object) {
		t.Fatalf("error %q should name %s and %s", err, method, object)
	}
}

func isSocket(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return false
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestVersion(t *testing.T) {
	e := newEnv(t)
	v := must(e.c.SpdkGetVersion(ctxT(t)))(t)
	if !strings.HasPrefix(v.Version, "SPDK v24.09") || v.Fields.Major != 24 || v.Fields.Minor != 9 {
		t.Fatalf("version %+v", v)
	}
	if e.c.Generation() != 1 {
		t.Fatalf("generation %d", e.c.Generation())
	}
}

func TestMallocBdev(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	b := must(mallocBdev(ctx, e.c, "Malloc0", 64<<20, 4096))(t)
	if b.Name != "Malloc0" || b.NumBlocks != 16384 || b.BlockSize != 4096 || b.SizeBytes() != 64<<20 ||
		b.ProductName != spdk.MallocProductName || b.UUID == "" || b.Claimed {
		t.Fatalf("bdev %+v", b)
	}
	// Raw RPC error paths.
	_, err := e.c.BdevMallocCreate(ctx, spdk.MallocBdev{Name: "Malloc0", NumBlocks: 8, BlockSize: 512})
	wantRPC(t, err, -17, "File exists", "bdev_malloc_create", "Malloc0")
	if !spdk.IsExists(err) || spdk.IsNotFound(err) {
		t.Fatal("IsExists")
	}
	_, err = e.c.BdevMallocCreate(ctx, spdk.MallocBdev{Name: "Y", NumBlocks: 0, BlockSize: 512})
	wantRPC(t, err, -22, "Invalid argument", "bdev_malloc_create", "Y")
	_, err = e.c.BdevMallocCreate(ctx, spdk.MallocBdev{Name: "Y", NumBlocks: 8, BlockSize: 520})
	if !spdk.IsInvalid(err) {
		t.Fatalf("want IsInvalid, got %v", err)
	}
	_, err = e.c.GetBdev(ctx, "nope")
	wantRPC(t, err, -19, "No such device", "bdev_get_bdevs", "nope")
	if !spdk.IsNotFound(err) {
		t.Fatal("IsNotFound")
	}
	// SPDK names a bdev itself when no name is given, counting unnamed
	// attempts only: the first one collides with the named Malloc0.
	if _, err := e.c.BdevMallocCreate(ctx, spdk.MallocBdev{NumBlocks: 8, BlockSize: 512}); !spdk.IsExists(err) {
		t.Fatalf("first unnamed bdev after a named Malloc0: %v, want File exists", err)
	}
	name := must(e.c.BdevMallocCreate(ctx, spdk.MallocBdev{NumBlocks: 8, BlockSize: 512}))(t)
	if name != "Malloc1" {
		t.Fatalf("generated name %q", name)
	}
	all := must(e.c.BdevGetBdevs(ctx, "", 0))(t)
	if len(all) != 2 || all[0].Name != "Malloc0" || all[1].Name != "Malloc1" {
		t.Fatalf("bdevs %+v", all)
	}

	// Delete, idempotently.
	if err := e.c.DeleteMallocBdev(ctx, "Malloc0"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.DeleteMallocBdev(ctx, "Malloc0"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	err = e.c.BdevMallocDelete(ctx, "Malloc0")
	wantRPC(t, err, -19, "No such device", "bdev_malloc_delete", "Malloc0")
	if len(e.sim.Snapshot().Bdevs) != 1 {
		t.Fatal("Malloc0 still there")
	}
}

func TestBlkController(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	must(mallocBdev(ctx, e.c, "Malloc0", 64<<20, 4096))(t)
	ct := must(blkController(ctx, e.c, "vhostblk0", "Malloc0", false))(t)
	sock := filepath.Join(e.dir, "vhostblk0")
	if ct.Type() != spdk.TypeBlk || ct.Ctrlr != "vhostblk0" || ct.Socket != sock || ct.Cpumask != "0x1" ||
		ct.BackendSpecific.Block.Bdev != "Malloc0" || ct.BackendSpecific.Block.Readonly ||
		ct.BackendSpecific.Block.Transport != "vhost_user_blk" {
		t.Fatalf("controller %+v / %+v", ct, ct.BackendSpecific.Block)
	}
	if !isSocket(sock) {
		t.Fatalf("%s is not a live socket", sock)
	}
	must(mallocBdev(ctx, e.c, "Malloc1", 1<<20, 512))(t)
	if err := e.c.VhostCreateScsiController(ctx, spdk.ScsiController{Ctrlr: "vhostblk0"}); !spdk.IsExists(err) {
		t.Fatalf("a SCSI controller under a blk controller's name: %v", err)
	}

	err := e.c.VhostCreateBlkController(ctx, spdk.BlkController{Ctrlr: "vhostblk0", DevName: "Malloc1"})
	wantRPC(t, err, -32602, "File exists", "vhost_create_blk_controller", "vhostblk0")
	if !spdk.IsExists(err) {
		t.Fatal("IsExists for vhost")
	}
	err = e.c.VhostCreateBlkController(ctx, spdk.BlkController{Ctrlr: "vhostblk1", DevName: "nope"})
	wantRPC(t, err, -32602, "No such device", "vhost_create_blk_controller", "nope")
	if !spdk.IsNotFound(err) {
		t.Fatal("IsNotFound for vhost create")
	}
	_, err = e.c.GetController(ctx, "nope")
	wantRPC(t, err, -32603, "No such device", "vhost_get_controllers", "nope")
	if !spdk.IsNotFound(err) {
		t.Fatal("IsNotFound for -32603")
	}
	err = e.c.VhostDeleteController(ctx, "nope")
	wantRPC(t, err, -32602, "No such device", "vhost_delete_controller", "nope")

	if err := e.c.DeleteController(ctx, "vhostblk0"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
	if err := e.c.DeleteController(ctx, "vhostblk0"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if len(must(e.c.VhostGetControllers(ctx, ""))(t)) != 0 {
		t.Fatal("controllers left")
	}
}

func TestScsiController(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	must(mallocBdev(ctx, e.c, "Malloc0", 64<<20, 4096))(t)
	ct := must(scsiController(ctx, e.c, "vhostscsi0", "Malloc0"))(t)
	sock := filepath.Join(e.dir, "vhostscsi0")
	tgt, ok := ct.Target(0)
	if ct.Type() != spdk.TypeScsi || ct.Socket != sock || !ok || tgt.TargetName != "Target 0" ||
		len(tgt.Luns) != 1 || tgt.Luns[0].BdevName != "Malloc0" || tgt.Luns[0].ID != 0 {
		t.Fatalf("controller %+v", ct)
	}
	if !isSocket(sock) {
		t.Fatal("no socket")
	}
	must(mallocBdev(ctx, e.c, "Malloc1", 1<<20, 512))(t)
	if err := e.c.VhostCreateBlkController(ctx, spdk.BlkController{Ctrlr: "vhostscsi0", DevName: "Malloc0"}); !spdk.IsExists(err) {
		t.Fatalf("a blk controller under a SCSI controller's name: %v", err)
	}
	// An empty SCSI controller (e.g. left by a crash between the two
	// calls) gets its target.
	if err := e.c.VhostCreateScsiController(ctx, spdk.ScsiController{Ctrlr: "vhostscsi1"}); err != nil {
		t.Fatal(err)
	}
	must(e.c.VhostScsiControllerAddTarget(ctx, "vhostscsi1", 0, "Malloc1"))(t)
	ct1 := must(e.c.GetController(ctx, "vhostscsi1"))(t)
	if tg, ok := ct1.Target(0); !ok || tg.Luns[0].BdevName != "Malloc1" {
		t.Fatalf("vhostscsi1 %+v", ct1)
	}

	// Raw error paths.
	_, err := e.c.VhostScsiControllerAddTarget(ctx, "nope", 0, "Malloc0")
	wantRPC(t, err, -32602, "No such device", "vhost_scsi_controller_add_target", "nope")
	_, err = e.c.VhostScsiControllerAddTarget(ctx, "vhostscsi0", 0, "Malloc1")
	if !spdk.IsExists(err) {
		t.Fatalf("occupied slot: %v", err)
	}
	_, err = e.c.VhostScsiControllerAddTarget(ctx, "vhostscsi0", 1, "nope")
	if !spdk.IsInvalid(err) {
		t.Fatalf("unknown bdev on add_target: %v", err)
	}
	if n := must(e.c.VhostScsiControllerAddTarget(ctx, "vhostscsi0", -1, "Malloc1"))(t); n != 1 {
		t.Fatalf("first free slot %d", n)
	}
	if err := e.c.VhostScsiControllerRemoveTarget(ctx, "vhostscsi0", 5); !spdk.IsBusy(err) {
		t.Fatalf("empty slot: %v", err)
	}
	// DeleteController removes the targets first (v24.09 would also delete
	// a SCSI controller with its targets; older releases refuse).
	for _, n := range []string{"vhostscsi0", "vhostscsi1"} {
		if err := e.c.DeleteController(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatal("socket left behind")
	}
	if snap := e.sim.Snapshot(); len(snap.Controllers) != 0 || len(snap.Bdevs) != 2 {
		t.Fatalf("snapshot %+v", snap)
	}
}

// Deleting a bdev a controller uses succeeds (SPDK hot-removes it); the
// reconciler then sees a mismatch it can repair.
func TestHotRemovedBdev(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	must(mallocBdev(ctx, e.c, "Malloc0", 1<<20, 512))(t)
	must(blkController(ctx, e.c, "vb0", "Malloc0", false))(t)
	must(scsiController(ctx, e.c, "vs0", "Malloc0"))(t)
	if err := e.c.DeleteMallocBdev(ctx, "Malloc0"); err != nil {
		t.Fatal(err)
	}
	ct := must(e.c.GetController(ctx, "vb0"))(t)
	if ct.BackendSpecific.Block.Bdev != "" {
		t.Fatalf("blk bdev after hot-remove: %q", ct.BackendSpecific.Block.Bdev)
	}
	if ct := must(e.c.GetController(ctx, "vs0"))(t); len(ct.BackendSpecific.Scsi) != 0 || ct.Type() != spdk.TypeScsi {
		t.Fatalf("scsi after hot-remove: %+v", ct)
	}
	// Repair: recreate the bdev, recreate the blk controller, re-add the
	// SCSI target.
	must(mallocBdev(ctx, e.c, "Malloc0", 1<<20, 512))(t)
	if err := e.c.DeleteController(ctx, "vb0"); err != nil {
		t.Fatal(err)
	}
	must(blkController(ctx, e.c, "vb0", "Malloc0", false))(t)
	must(e.c.VhostScsiControllerAddTarget(ctx, "vs0", 0, "Malloc0"))(t)
}

func TestInjectedFailures(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.sim.FailNext("bdev_malloc_create", 2, -12, "Cannot allocate memory")
	for i := 0; i < 2; i++ {
		_, err := mallocBdev(ctx, e.c, "Malloc0", 1<<20, 512)
		wantRPC(t, err, -12, "Cannot allocate memory", "bdev_malloc_create", "Malloc0")
	}
	must(mallocBdev(ctx, e.c, "Malloc0", 1<<20, 512))(t)

	e.sim.FailNext("vhost_get_controllers", 1, -32603, "Internal error")
	if _, err := blkController(ctx, e.c, "vb0", "Malloc0", false); err == nil || spdk.IsNotFound(err) {
		t.Fatalf("injected -32603 must not look like not-found: %v", err)
	}
	must(e.c.GetController(ctx, "vb0"))(t)
	if e.c.Generation() != 1 {
		t.Fatalf("RPC errors must not reconnect: generation %d", e.c.Generation())
	}
}

func TestReconnectAfterRestart(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	must(mallocBdev(ctx, e.c, "Malloc0", 1<<20, 512))(t)
	must(blkController(ctx, e.c, "vb0", "Malloc0", false))(t)
	sock := filepath.Join(e.dir, "vb0")
	gen := e.c.Generation()

	if err := e.sim.Restart(spdksim.RestartOptions{}); err != nil {
		t.Fatal(err)
	}
	// A crashed spdk_tgt leaves its socket file; nobody listens on it.
	if _, err := os.Lstat(sock); err != nil || isSocket(sock) {
		t.Fatalf("want a stale socket file: %v", err)
	}
	// The old connection is dead; the request never reached the new
	// instance, so the client redials transparently.
	bdevs := must(e.c.BdevGetBdevs(ctx, "", 0))(t)
	if len(bdevs) != 0 {
		t.Fatalf("state survived restart: %+v", bdevs)
	}
	if g := e.c.Generation(); g != gen+1 {
		t.Fatalf("generation %d, want %d", g, gen+1)
	}
	// Reconcile again: everything comes back, socket live.
	must(mallocBdev(ctx, e.c, "Malloc0", 1<<20, 512))(t)
	must(blkController(ctx, e.c, "vb0", "Malloc0", false))(t)
	if !isSocket(sock) {
		t.Fatal("socket not recreated")
	}

	// While SPDK is down, calls fail with ErrConnection.
	done := make(chan error, 1)
	go func() { done <- e.sim.Restart(spdksim.RestartOptions{Downtime: 400 * time.Millisecond}) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Lstat(e.sim.Addr()); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("RPC socket never went away")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := e.c.BdevGetBdevs(ctx, "", 0); !errors.Is(err, spdk.ErrConnection) {
		t.Fatalf("want ErrConnection while down, got %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	gen = e.c.Generation()
	must(e.c.BdevGetBdevs(ctx, "", 0))(t)
	if e.c.Generation() != gen+1 {
		t.Fatal("no new connection after downtime")
	}
}

func TestDroppedConnections(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	must(mallocBdev(ctx, e.c, "Malloc0", 1<<20, 512))(t)
	gen := e.c.Generation()

	// Connection closed between calls: transparent redial.
	if n := e.sim.DropConnections(); n != 1 {
		t.Fatalf("dropped %d", n)
	}
	must(e.c.BdevGetBdevs(ctx, "Malloc0", 0))(t)
	if e.c.Generation() != gen+1 {
		t.Fatal("generation not bumped")
	}

	// Reply lost after SPDK applied the call: the client cannot know, so
	// it reports ErrConnection and does not resend; a look finds it made.
	e.sim.DropNext("vhost_create_blk_controller", 1, true)
	if _, err := blkController(ctx, e.c, "vb0", "Malloc0", false); !errors.Is(err, spdk.ErrConnection) {
		t.Fatalf("want ErrConnection, got %v", err)
	}
	must(e.c.GetController(ctx, "vb0"))(t)
	if n := e.sim.Calls("vhost_create_blk_controller"); n != 1 {
		t.Fatalf("create resent: %d calls", n)
	}
	// Dropped before applying: the next create makes it.
	e.sim.DropNext("vhost_create_scsi_controller", 1, false)
	if _, err := scsiController(ctx, e.c, "vs0", "Malloc0"); !errors.Is(err, spdk.ErrConnection) {
		t.Fatalf("want ErrConnection, got %v", err)
	}
	must(scsiController(ctx, e.c, "vs0", "Malloc0"))(t)
}

func TestContextDeadline(t *testing.T) {
	e := newEnv(t)
	must(e.c.SpdkGetVersion(ctxT(t)))(t)
	gen := e.c.Generation()
	e.sim.SetLatency("bdev_get_bdevs", 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.c.BdevGetBdevs(ctx, "", 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	if time.Since(start) > 250*time.Millisecond {
		t.Fatal("call not interrupted by the deadline")
	}
	e.sim.ClearFaults()
	// The late bdev_get_bdevs reply arrives first on the same connection;
	// it must be discarded, not taken for this call's.
	v := must(e.c.SpdkGetVersion(ctxT(t)))(t)
	if v.Fields.Major != 24 {
		t.Fatalf("got %+v", v)
	}
	if e.c.Generation() != gen {
		t.Fatal("a cancelled call should not cost the connection")
	}
}

// Disconnected fires when SPDK goes away, without any call in flight.
func TestDisconnectedEvent(t *testing.T) {
	e := newEnv(t)
	select {
	case <-e.c.Disconnected():
	default:
		t.Fatal("not connected yet: channel should be closed")
	}
	must(e.c.SpdkGetVersion(ctxT(t)))(t)
	lost := e.c.Disconnected()
	select {
	case <-lost:
		t.Fatal("closed while connected")
	default:
	}
	if err := e.sim.Restart(spdksim.RestartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("restart not noticed")
	}
	gen := e.c.Generation()
	must(e.c.SpdkGetVersion(ctxT(t)))(t)
	if e.c.Generation() != gen+1 {
		t.Fatal("no new generation")
	}
	lost = e.c.Disconnected()
	e.c.Close()
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("Close not signalled")
	}
	if _, err := e.c.SpdkGetVersion(ctxT(t)); err == nil {
		t.Fatal("call after Close succeeded")
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	// A call in flight when the connection drops fails with ErrConnection
	// (its request was sent; it is never resent); a reconciler retries.
	retry := func(f func() error) error {
		var err error
		for i := 0; i < 3; i++ {
			if err = f(); !errors.Is(err, spdk.ErrConnection) {
				return err
			}
		}
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := fmt.Sprintf("M%d", i)
			if err := retry(func() error { _, err := mallocBdev(ctx, e.c, name, 1<<20, 512); return made(err) }); err != nil {
				errs <- err
				return
			}
			if i == 3 {
				e.sim.DropConnections()
			}
			if err := retry(func() error { _, err := blkController(ctx, e.c, "vb"+name, name, i%2 == 0); return made(err) }); err != nil {
				errs <- err
			}
			if err := retry(func() error { _, err := e.c.BdevGetBdevs(ctx, "", 0); return err }); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	snap := e.sim.Snapshot()
	if len(snap.Bdevs) != 8 || len(snap.Controllers) != 8 {
		t.Fatalf("snapshot %+v", snap)
	}
	if e.c.Generation() < 2 {
		t.Fatalf("generation %d after a drop", e.c.Generation())
	}
}

func TestDialFailure(t *testing.T) {
	c := spdk.New(filepath.Join(t.TempDir(), "none.sock"))
	defer c.Close()
	_, err := c.SpdkGetVersion(ctxT(t))
	if !errors.Is(err, spdk.ErrConnection) || spdk.IsNotFound(err) {
		t.Fatalf("got %v", err)
	}
	if c.Generation() != 0 {
		t.Fatal("generation counts dials that failed")
	}
	if spdk.New("").SocketPath() != spdk.DefaultSocket {
		t.Fatal("default socket")
	}
}

func TestErrorClassifiers(t *testing.T) {
	rpc := func(code int, msg string) error {
		return fmt.Errorf("bdev %q: %w", "x", &spdk.RPCError{Code: code, Message: msg, Method: "m"})
	}
	for _, tc := range []struct {
		err                             error
		notFound, exists, busy, invalid bool
	}{
		{rpc(-19, "No such device"), true, false, false, false},
		{rpc(-32602, "No such device"), true, false, false, false},
		{rpc(-32603, "No such device"), true, false, false, false},
		{rpc(-32603, "Internal error"), false, false, false, false},
		{rpc(-17, "File exists"), false, true, false, false},
		{rpc(-32602, "File exists"), false, true, false, false},
		{rpc(-32603, "File exists"), false, false, false, false},
		{rpc(-16, "Device or resource busy"), false, false, true, false},
		{rpc(-32602, "Device or resource busy"), false, false, true, false},
		{rpc(-22, "Invalid argument"), false, false, false, true},
		{rpc(-32602, "Invalid argument"), false, false, false, true},
		{errors.New("No such device"), false, false, false, false},
		{nil, false, false, false, false},
	} {
		if spdk.IsNotFound(tc.err) != tc.notFound || spdk.IsExists(tc.err) != tc.exists ||
			spdk.IsBusy(tc.err) != tc.busy || spdk.IsInvalid(tc.err) != tc.invalid {
			t.Errorf("%v: classified wrong", tc.err)
		}
	}
}

// mallocBdev creates a malloc bdev of size bytes and returns SPDK's view
// of it.
func mallocBdev(ctx context.Context, c *spdk.Client, name string, size uint64, bs uint32) (*spdk.Bdev, error) {
	if _, err := c.BdevMallocCreate(ctx, spdk.MallocBdev{Name: name, NumBlocks: size / uint64(bs), BlockSize: bs}); err != nil {
		return nil, err
	}
	return c.GetBdev(ctx, name)
}

// blkController creates a vhost-blk controller and returns SPDK's view of
// it.
func blkController(ctx context.Context, c *spdk.Client, ctrlr, bdev string, readonly bool) (*spdk.Controller, error) {
	if err := c.VhostCreateBlkController(ctx, spdk.BlkController{Ctrlr: ctrlr, DevName: bdev, Readonly: readonly}); err != nil {
		return nil, err
	}
	return c.GetController(ctx, ctrlr)
}

// scsiController creates a vhost-scsi controller with target 0 on bdev and
// returns SPDK's view of it.
func scsiController(ctx context.Context, c *spdk.Client, ctrlr, bdev string) (*spdk.Controller, error) {
	if err := c.VhostCreateScsiController(ctx, spdk.ScsiController{Ctrlr: ctrlr}); err != nil {
		return nil, err
	}
	if _, err := c.VhostScsiControllerAddTarget(ctx, ctrlr, 0, bdev); err != nil {
		return nil, err
	}
	return c.GetController(ctx, ctrlr)
}

// made treats "already exists" as done: a create retried after a reply
// lost with the connection finds its own object.
func made(err error) error {
	if spdk.IsExists(err) {
		return nil
	}
	return err
}
