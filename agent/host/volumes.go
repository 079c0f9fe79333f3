package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// A volume's SPDK objects are either owned (created by this agent for the
// volume, recorded as owned in its status before the create call) or not
// (made by hand: adopted as they are, or a hand-made bdev named with -o
// bdev). Only owned objects are ever deleted or re-created. See
// volume/README.md for the rules as users see them.

// refusal is an error that retrying cannot cure: a precondition SPDK was
// asked about does not hold (a name taken by a hand-made object, nothing to
// adopt, memory exhausted). The status reports it and the volume is not
// retried until its intent or SPDK changes.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func refuse(format string, a ...any) error { return &refusal{fmt.Sprintf(format, a...)} }

// OwnedBdevUUID is the UUID the agent gives the malloc bdev it creates for
// the volume at intent key: recognisable as uspace's, and as this volume's,
// by anyone who reads bdev_get_bdevs, whatever the bdev's name.
func OwnedBdevUUID(key string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("uspace:"+key)).String()
}

// reconcileVolume makes SPDK and the vhost-user directory match one volume
// intent: adopt or create the controller (and the bdev, with -o size),
// check the socket, make the device node. Without an intent it undoes what
// the last status recorded as owned.
func (a *Agent) reconcileVolume(ctx context.Context, key string, kv *store.KV) error {
	k, err := schema.ParseKey(key)
	if err != nil {
		return nil // not ours to handle; ParseKey already filtered the watch
	}
	sk := schema.StatusKey(k)
	prev := a.volumeStatus(sk)
	if kv == nil {
		if prev != nil {
			if err := a.teardownVolume(ctx, key, prev); err != nil {
				return fmt.Errorf("remove volume %s: %w", k.Volume, err)
			}
		}
		return a.status.Delete(ctx, sk)
	}
	v, err := schema.DecodeAs[schema.Volume](kv.Value)
	if err == nil {
		err = a.checkVolumeRoot(v.Root)
	}
	if err != nil {
		// Retrying cannot fix a bad value; report it and wait for a new one.
		// What the last status recorded stays recorded: it is what a
		// remove must still undo.
		failed := schema.VolumeStatus{}
		if prev != nil {
			failed = *prev
		}
		failed.ObservedRevision, failed.Ready, failed.Error = kv.ModRevision, false, err.Error()
		return a.status.Put(ctx, sk, &failed)
	}
	st := &schema.VolumeStatus{
		ObservedRevision: kv.ModRevision,
		SocketPath:       v.SocketPath(),
		DevicePath:       v.DevicePath(),
		Major:            v.Type.Major(),
		Minor:            v.Minor,
		Controller:       v.Device,
	}
	if prev != nil && !sameVolumeHandles(prev, st, v) {
		// The intent now names other objects: the old ones go first, so a
		// renamed device never leaves its old node behind.
		if err := a.teardownVolume(ctx, key, prev); err != nil {
			return fmt.Errorf("replace volume %s: %w", v.Name, err)
		}
		prev = nil
	}
	// What the agent owns stays owned, whatever this pass decides: a later
	// remove must still clean it up.
	if prev != nil {
		st.OwnsController, st.OwnsBdev, st.Bdev, st.Adopted = prev.OwnsController, prev.OwnsBdev, prev.Bdev, prev.Adopted
	}

	p, err := a.planVolume(ctx, key, v, prev)
	if err != nil {
		return a.volumeFailed(ctx, sk, st, err)
	}
	st.Bdev, st.Adopted = p.bdev, p.adopted
	st.OwnsBdev = st.OwnsBdev || p.createBdev
	st.OwnsController = st.OwnsController || p.createController
	if prev == nil || prev.OwnsBdev != st.OwnsBdev || prev.OwnsController != st.OwnsController || prev.Bdev != st.Bdev {
		// Ownership is recorded before SPDK holds anything it names, so a
		// crash mid-way leaves enough behind to clean up, and nothing
		// recorded as not owned is ever something the agent made. Status
		// writes are batched: this one must be in etcd first.
		pending := *st
		if err := a.status.Put(ctx, sk, &pending); err != nil {
			return err
		}
		if err := a.status.Flush(ctx); err != nil {
			return fmt.Errorf("record volume %s before creating it: %w", v.Name, err)
		}
	}
	if err := a.applyVolume(ctx, key, v, p, st); err != nil {
		return a.volumeFailed(ctx, sk, st, err)
	}
	st.Ready = true
	return a.status.Put(ctx, sk, st)
}

// volumeFailed reports err in the status. A refusal is final until the
// intent or SPDK changes (a mount, the drift check): it is not retried.
func (a *Agent) volumeFailed(ctx context.Context, sk string, st *schema.VolumeStatus, err error) error {
	st.Ready = false
	// A refusal is terminal; SPDK unreachable or slow is worth waiting on.
	st.Error, st.Retrying = err.Error(), volumeTransient(err)
	if werr := a.status.Put(ctx, sk, st); werr != nil {
		return errors.Join(err, werr)
	}
	var r *refusal
	if errors.As(err, &r) {
		a.log.Info("volume refused", "status", sk, "reason", err)
		return nil
	}
	return err
}

// sameVolumeHandles reports whether the status prev was written for the
// same device, node and bdev as the intent v asks for now.
func sameVolumeHandles(prev, st *schema.VolumeStatus, v *schema.Volume) bool {
	if prev.Controller != st.Controller || prev.DevicePath != st.DevicePath || prev.SocketPath != st.SocketPath ||
		prev.Major != st.Major || prev.Minor != st.Minor {
		return false
	}
	// An owned bdev is the one the intent's -o size asked for.
	return !prev.OwnsBdev || (v.Malloc != nil && prev.Bdev == v.Bdev)
}

func (a *Agent) volumeStatus(sk string) *schema.VolumeStatus {
	b, ok := a.status.Get(sk)
	if !ok || b == nil {
		return nil
	}
	st, err := schema.DecodeAs[schema.VolumeStatus](b)
	if err != nil {
		return nil
	}
	return st
}

// checkVolumeRoot refuses a volume whose root is not, or does not lie in, a
// root the agent was configured with (--volume-root): the agent creates
// and deletes files there.
func (a *Agent) checkVolumeRoot(root string) error {
	for _, r := range a.cfg.VolumeRoots {
		if root == r {
			return nil
		}
	}
	if err := schema.UnderRoot("root", root, a.cfg.VolumeRoots); err != nil {
		return fmt.Errorf("%w: start the host agent with --volume-root %s to serve it", err, root)
	}
	return nil
}

// underRoots is the check before every file system call for a volume.
func (a *Agent) underRoots(path string) error {
	return schema.UnderRoot("volume path", path, a.cfg.VolumeRoots)
}

// volumePlan is what applyVolume will do, decided from what SPDK holds
// before anything is created.
type volumePlan struct {
	bdev             string // the bdev the controller serves ("" unknown: a SCSI controller with several)
	adopted          bool
	createBdev       bool
	createController bool
	// deleteController: an owned controller that no longer matches (its
	// bdev was deleted and re-created, or it serves another) is deleted
	// and created again: SPDK cannot re-attach a bdev.
	deleteController bool
	// addTarget: an owned SCSI controller lost its target 0.
	addTarget bool
}

// planVolume checks every precondition SPDK can be asked about before the
// first create, so that a refused volume leaves nothing behind.
func (a *Agent) planVolume(ctx context.Context, key string, v *schema.Volume, prev *schema.VolumeStatus) (*volumePlan, error) {
	ctrl, err := a.spdk.GetController(ctx, v.Device)
	if spdk.IsNotFound(err) {
		ctrl, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	ownsCtrl := prev != nil && prev.OwnsController && prev.Controller == v.Device
	if ctrl != nil && ctrl.Type() != string(v.Type) {
		return nil, refuse("controller %s in SPDK is a %s controller, the volume has type=%s", v.Device, ctrl.Type(), v.Type)
	}
	p := &volumePlan{bdev: v.Bdev}

	if v.Malloc != nil {
		b, err := a.getBdev(ctx, v.Bdev)
		if err != nil {
			return nil, err
		}
		if b == nil {
			p.createBdev = true
		} else if err := checkOwnedBdev(key, v, b); err != nil {
			return nil, err
		}
	}
	if ctrl == nil {
		return a.planNewController(ctx, v, prev, p)
	}

	if !ownsCtrl {
		// Made by hand: adopt it as it is, or refuse; never take it over.
		if v.Malloc != nil {
			return nil, refuse("controller %s already exists in SPDK and was not created by uspace: without -o size the volume adopts it as it is; with -o size choose another -o device",
				v.Device)
		}
		p.adopted = true
		served, err := servedBdev(ctrl, v.Bdev)
		if err != nil {
			return nil, err
		}
		p.bdev = served
		return p, nil
	}

	return a.planOwnedController(ctx, v, ctrl, p)
}

// planNewController completes p when SPDK has no controller for v: it is
// created, unless it was adopted (made by hand) or its hand-made bdev is
// missing.
func (a *Agent) planNewController(ctx context.Context, v *schema.Volume, prev *schema.VolumeStatus, p *volumePlan) (*volumePlan, error) {
	if prev != nil && prev.Adopted {
		return nil, refuse("controller %s, adopted by this volume as made by hand, is no longer in SPDK; uspace does not re-create what it did not make: create it again by hand (%s), or remove the volume",
			v.Device, handMadeHint(v, prev.Bdev))
	}
	if v.Malloc == nil {
		if v.Bdev == "" {
			return nil, refuse("SPDK has no controller %s to adopt and the volume has no -o size: either create the volume with -o size=<bytes> (e.g. size=64MiB) so that uspace creates bdev and controller, "+
				"or create them by hand first: %s", v.Device, handMadeHint(v, "Malloc0"))
		}
		b, err := a.getBdev(ctx, v.Bdev)
		if err != nil {
			return nil, err
		}
		if b == nil {
			return nil, refuse("bdev %s does not exist in SPDK: create it first (rpc.py bdev_malloc_create 64 4096 -b %s), or create the volume with -o size=<bytes> so that uspace creates it",
				v.Bdev, v.Bdev)
		}
	}
	p.createController = true
	return p, nil
}

// planOwnedController completes p for a controller the agent made: it must
// serve the bdev the volume names, else it is made again.
func (a *Agent) planOwnedController(ctx context.Context, v *schema.Volume, ctrl *spdk.Controller, p *volumePlan) (*volumePlan, error) {
	switch {
	case v.Type == schema.VolumeBlk && (ctrl.BackendSpecific.Block.Bdev != v.Bdev || ctrl.BackendSpecific.Block.Readonly):
		p.deleteController, p.createController = true, true
	case v.Type == schema.VolumeSCSI:
		t, ok := ctrl.Target(0)
		switch {
		case !ok:
			p.addTarget = true
		case len(t.Luns) == 0 || t.Luns[0].BdevName != v.Bdev:
			p.deleteController, p.createController = true, true
		}
	}
	if v.Malloc == nil && (p.createController || p.addTarget) {
		if b, err := a.getBdev(ctx, v.Bdev); err != nil {
			return nil, err
		} else if b == nil {
			return nil, refuse("bdev %s (not made by uspace) is no longer in SPDK: create it again by hand (rpc.py bdev_malloc_create 64 4096 -b %s) or remove the volume", v.Bdev, v.Bdev)
		}
	}
	return p, nil
}

// getBdev returns the bdev, nil when SPDK has none of that name.
func (a *Agent) getBdev(ctx context.Context, name string) (*spdk.Bdev, error) {
	b, err := a.spdk.GetBdev(ctx, name)
	if spdk.IsNotFound(err) {
		return nil, nil
	}
	return b, err
}

// checkOwnedBdev accepts an existing bdev for a -o size volume only if the
// agent made it for this volume (its UUID says so) with the size asked.
func checkOwnedBdev(key string, v *schema.Volume, b *spdk.Bdev) error {
	if !strings.EqualFold(b.UUID, OwnedBdevUUID(key)) {
		return refuse("bdev %s already exists in SPDK and was not created by uspace for this volume: with -o size uspace creates (and later deletes) the bdev, so it never takes an existing one; "+
			"drop -o size to use it as it is (-o bdev=%s), or choose another -o bdev", v.Bdev, v.Bdev)
	}
	m := v.Malloc
	if b.BlockSize != m.BlockSize || b.SizeBytes() != m.SizeBytes {
		return refuse("bdev %s has %d blocks of %d bytes, the volume asks for %d bytes in blocks of %d", v.Bdev, b.NumBlocks, b.BlockSize, m.SizeBytes, m.BlockSize)
	}
	return nil
}

// servedBdev is the bdev an adopted controller serves, checked against the
// volume's -o bdev when it has one.
func servedBdev(ctrl *spdk.Controller, want string) (string, error) {
	if blk := ctrl.BackendSpecific.Block; blk != nil {
		switch {
		case blk.Bdev == "":
			return "", refuse("controller %s (made by hand) serves no bdev: its bdev was deleted; uspace does not repair what it did not make: re-create the controller by hand, or remove the volume", ctrl.Ctrlr)
		case want != "" && blk.Bdev != want:
			return "", refuse("controller %s (made by hand) serves bdev %s, the volume asks for -o bdev=%s", ctrl.Ctrlr, blk.Bdev, want)
		}
		return blk.Bdev, nil
	}
	var bdevs []string
	for _, t := range ctrl.BackendSpecific.Scsi {
		for _, l := range t.Luns {
			bdevs = append(bdevs, l.BdevName)
		}
	}
	switch {
	case len(bdevs) == 0:
		return "", refuse("SCSI controller %s (made by hand) has no targets: add one by hand (rpc.py vhost_scsi_controller_add_target %s 0 <bdev>)", ctrl.Ctrlr, ctrl.Ctrlr)
	case want != "" && !slices.Contains(bdevs, want):
		return "", refuse("SCSI controller %s (made by hand) serves %s, not the volume's -o bdev=%s", ctrl.Ctrlr, strings.Join(bdevs, ", "), want)
	case len(bdevs) == 1:
		return bdevs[0], nil
	case want != "":
		return want, nil
	}
	return "", nil
}

// handMadeHint is how to make a volume's controller by hand.
func handMadeHint(v *schema.Volume, bdev string) string {
	if bdev == "" {
		bdev = "Malloc0"
	}
	mk := fmt.Sprintf("rpc.py bdev_malloc_create 64 4096 -b %s; ", bdev)
	if v.Type == schema.VolumeSCSI {
		return mk + fmt.Sprintf("rpc.py vhost_create_scsi_controller %s; rpc.py vhost_scsi_controller_add_target %s 0 %s", v.Device, v.Device, bdev)
	}
	return mk + fmt.Sprintf("rpc.py vhost_create_blk_controller %s %s", v.Device, bdev)
}

// applyVolume carries out a plan, then makes the socket visible and the
// device node.
func (a *Agent) applyVolume(ctx context.Context, key string, v *schema.Volume, p *volumePlan, st *schema.VolumeStatus) error {
	if p.createBdev {
		m := v.Malloc
		_, err := a.spdk.BdevMallocCreate(ctx, spdk.MallocBdev{
			Name: v.Bdev, NumBlocks: m.SizeBytes / uint64(m.BlockSize), BlockSize: m.BlockSize, UUID: OwnedBdevUUID(key),
		})
		if err != nil {
			if err := a.mallocCreateFailed(ctx, key, v, err); err != nil {
				return err
			}
		}
	}
	if p.deleteController {
		if err := a.spdk.DeleteController(ctx, v.Device); err != nil {
			return err
		}
	}
	if p.createController {
		if err := a.createController(ctx, v); err != nil {
			if !spdk.IsExists(err) {
				return err
			}
			// Made by hand between the check and the create: not ours, and
			// a refused volume leaves nothing of its own behind.
			st.OwnsController = false
			if p.createBdev {
				if derr := a.spdk.DeleteMallocBdev(ctx, v.Bdev); derr != nil {
					return errors.Join(err, derr)
				}
				st.OwnsBdev = false
			}
			return refuse("controller %s appeared in SPDK while uspace was about to create it: it is not uspace's; the volume adopts it on its next mount (without -o size)", v.Device)
		}
	}
	if p.addTarget {
		if _, err := a.spdk.VhostScsiControllerAddTarget(ctx, v.Device, 0, v.Bdev); err != nil && !spdk.IsExists(err) {
			return err
		}
	}
	ctrl, err := a.spdk.GetController(ctx, v.Device)
	if err != nil {
		return err
	}
	for _, dir := range []string{filepath.Dir(v.SocketPath()), filepath.Dir(v.DevicePath())} {
		if err := a.underRoots(dir); err != nil {
			return refuse("%v", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := linkSocket(ctrl.Socket, v.SocketPath()); err != nil {
		return err
	}
	return ensureBlockNode(v.DevicePath(), v.Type.Major(), v.Minor)
}

// mallocCreateFailed sorts out a failed bdev_malloc_create. SPDK checks
// memory before names, so a taken name can come back as -12 as well as
// -17: what SPDK holds now decides.
func (a *Agent) mallocCreateFailed(ctx context.Context, key string, v *schema.Volume, err error) error {
	var rpcErr *spdk.RPCError
	if !errors.As(err, &rpcErr) {
		return err // no answer: the next pass looks again
	}
	b, gerr := a.getBdev(ctx, v.Bdev)
	if gerr != nil {
		return errors.Join(err, gerr)
	}
	if b != nil {
		return checkOwnedBdev(key, v, b)
	}
	if rpcErr.Code == -12 {
		return refuse("SPDK has no memory left for a %d-byte malloc bdev %s (%v): free some, or create a smaller volume", v.Malloc.SizeBytes, v.Bdev, err)
	}
	return refuse("creating bdev %s: %v", v.Bdev, err)
}

func (a *Agent) createController(ctx context.Context, v *schema.Volume) error {
	if v.Type == schema.VolumeBlk {
		return a.spdk.VhostCreateBlkController(ctx, spdk.BlkController{Ctrlr: v.Device, DevName: v.Bdev})
	}
	if err := a.spdk.VhostCreateScsiController(ctx, spdk.ScsiController{Ctrlr: v.Device}); err != nil {
		return err
	}
	_, err := a.spdk.VhostScsiControllerAddTarget(ctx, v.Device, 0, v.Bdev)
	return err
}

// linkSocket makes the controller's socket visible where Kata looks for it.
// SPDK creates it in its own -S directory; when the volume uses another root
// a symlink bridges the two.
func linkSocket(actual, want string) error {
	if actual == "" {
		return fmt.Errorf("SPDK reports no socket for the controller expected at %s", want)
	}
	if actual != want {
		if cur, err := os.Readlink(want); err != nil || cur != actual {
			if fi, err := os.Lstat(want); err == nil && fi.Mode().Type() != fs.ModeSymlink {
				return refuse("vhost-user socket path %s is taken by a %s uspace did not make; SPDK's socket is %s", want, fi.Mode().Type(), actual)
			}
			_ = os.Remove(want)
			if err := os.Symlink(actual, want); err != nil {
				return fmt.Errorf("link vhost-user socket %s -> %s: %w", want, actual, err)
			}
		}
	}
	fi, err := os.Stat(want)
	if err != nil {
		return fmt.Errorf("vhost-user socket %s: %w", want, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("vhost-user socket %s is not a socket (%s)", want, fi.Mode().Type())
	}
	return nil
}

// ensureBlockNode creates the block node Kata resolves by major:minor,
// replacing a stale node of that name with other numbers (the volume
// driver never hands out a minor that another node on disk holds).
func ensureBlockNode(path string, major, minor uint32) error {
	want := unix.Mkdev(major, minor)
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err == nil {
		if st.Mode&unix.S_IFMT == unix.S_IFBLK && uint64(st.Rdev) == want {
			return nil
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("replace stale device node %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat device node %s: %w", path, err)
	}
	if err := unix.Mknod(path, unix.S_IFBLK|0o660, int(want)); err != nil {
		return fmt.Errorf("mknod %s b %d %d: %w", path, major, minor, err)
	}
	return nil
}

// teardownVolume undoes what a status recorded, in reverse order of
// creation: the device node (if it is still the block node the volume
// had), the socket symlink, and only the SPDK objects the status records
// as owned. Every step tolerates what is already gone.
func (a *Agent) teardownVolume(ctx context.Context, key string, st *schema.VolumeStatus) error {
	if p := st.DevicePath; p != "" && a.underRoots(p) == nil {
		var s unix.Stat_t
		if err := unix.Lstat(p, &s); err == nil && s.Mode&unix.S_IFMT == unix.S_IFBLK && uint64(s.Rdev) == unix.Mkdev(st.Major, st.Minor) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove device node %s: %w", p, err)
			}
		}
	}
	if p := st.SocketPath; p != "" && a.underRoots(p) == nil {
		// The socket itself belongs to SPDK; only our symlink goes.
		if fi, err := os.Lstat(p); err == nil && fi.Mode().Type() == fs.ModeSymlink {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove socket link %s: %w", p, err)
			}
		}
	}
	if st.OwnsController && st.Controller != "" {
		if err := a.spdk.DeleteController(ctx, st.Controller); err != nil {
			return err
		}
	}
	if st.OwnsBdev && st.Bdev != "" {
		b, err := a.getBdev(ctx, st.Bdev)
		if err != nil {
			return err
		}
		// A bdev of that name with another UUID was made by hand after ours
		// went: not ours to delete.
		if b != nil && strings.EqualFold(b.UUID, OwnedBdevUUID(key)) {
			if err := a.spdk.DeleteMallocBdev(ctx, st.Bdev); err != nil {
				return err
			}
		} else if b != nil {
			a.log.Warn("not deleting bdev: it is not the one uspace made", "bdev", st.Bdev, "uuid", b.UUID)
		}
	}
	return nil
}
