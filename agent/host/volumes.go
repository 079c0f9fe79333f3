package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// reconcileVolume makes SPDK and the vhost-user directory match one volume
// intent: bdev (when the intent asks for one), controller, socket, device
// node. Without an intent it undoes what the last status recorded.
func (a *Agent) reconcileVolume(ctx context.Context, key string, kv *store.KV) error {
	k, err := schema.ParseKey(key)
	if err != nil {
		return nil // not ours to handle; ParseKey already filtered the watch
	}
	sk := schema.StatusKey(k)
	prev := a.volumeStatus(sk)
	if kv == nil {
		if prev != nil {
			if err := a.teardownVolume(ctx, prev); err != nil {
				return fmt.Errorf("remove volume %s: %w", k.Volume, err)
			}
		}
		return a.status.Delete(ctx, sk)
	}
	v, err := schema.DecodeAs[schema.Volume](kv.Value)
	if err != nil {
		// Retrying cannot fix a bad value; report it and wait for a new one.
		return a.status.Put(ctx, sk, &schema.VolumeStatus{ObservedRevision: kv.ModRevision, Error: err.Error()})
	}
	st := &schema.VolumeStatus{
		ObservedRevision: kv.ModRevision,
		SocketPath:       v.SocketPath(),
		DevicePath:       v.DevicePath(),
		Major:            v.Type.Major(),
		Minor:            v.Minor,
		Controller:       v.Device,
		Bdev:             v.Bdev,
		OwnsBdev:         v.Malloc != nil,
	}
	if prev != nil && !sameVolumeHandles(prev, st) {
		// The intent now names other objects: the old ones go first, so a
		// renamed device never leaves its old node behind.
		if err := a.teardownVolume(ctx, prev); err != nil {
			return fmt.Errorf("replace volume %s: %w", v.Name, err)
		}
	}
	if prev == nil || !sameVolumeHandles(prev, st) {
		// Record the handles before creating anything, so that a crash
		// mid-way still leaves enough behind to clean up. Not ready and no
		// error: in progress.
		// Status writes are asynchronous: this one must be in etcd before
		// SPDK holds anything it names.
		pending := *st
		if err := a.status.Put(ctx, sk, &pending); err != nil {
			return err
		}
		if err := a.status.Flush(ctx); err != nil {
			return fmt.Errorf("record volume %s before creating it: %w", v.Name, err)
		}
	}
	if err := a.applyVolume(ctx, v); err != nil {
		st.Error, st.Retrying = err.Error(), volumeTransient(err)
		if werr := a.status.Put(ctx, sk, st); werr != nil {
			return errors.Join(err, werr)
		}
		return err
	}
	st.Ready = true
	return a.status.Put(ctx, sk, st)
}

func sameVolumeHandles(a, b *schema.VolumeStatus) bool {
	return a.Controller == b.Controller && a.Bdev == b.Bdev && a.OwnsBdev == b.OwnsBdev &&
		a.DevicePath == b.DevicePath && a.SocketPath == b.SocketPath &&
		a.Major == b.Major && a.Minor == b.Minor
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

func (a *Agent) applyVolume(ctx context.Context, v *schema.Volume) error {
	if m := v.Malloc; m != nil {
		if _, err := a.spdk.EnsureMallocBdev(ctx, v.Bdev, m.SizeBytes, m.BlockSize); err != nil {
			return err
		}
	} else if _, err := a.spdk.GetBdev(ctx, v.Bdev); err != nil {
		if spdk.IsNotFound(err) {
			return fmt.Errorf("bdev %q does not exist in SPDK: create it, or create the volume with -o size=... to have uspace create it", v.Bdev)
		}
		return err
	}
	var (
		ctrl *spdk.Controller
		err  error
	)
	if v.Type == schema.VolumeSCSI {
		ctrl, err = a.spdk.EnsureScsiController(ctx, v.Device, v.Bdev)
	} else {
		ctrl, err = a.spdk.EnsureBlkController(ctx, v.Device, v.Bdev, false)
	}
	if err != nil {
		return err
	}
	for _, dir := range []string{filepath.Dir(v.SocketPath()), filepath.Dir(v.DevicePath())} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := linkSocket(ctrl.Socket, v.SocketPath()); err != nil {
		return err
	}
	return ensureBlockNode(v.DevicePath(), v.Type.Major(), v.Minor)
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
// replacing a stale node with other numbers.
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
// creation. Every step tolerates what is already gone.
func (a *Agent) teardownVolume(ctx context.Context, st *schema.VolumeStatus) error {
	for _, p := range []string{st.DevicePath, st.SocketPath} {
		fi, err := os.Lstat(p)
		if err != nil || p == "" {
			continue
		}
		// The socket itself belongs to SPDK; only our symlink goes.
		if p == st.SocketPath && fi.Mode().Type() != fs.ModeSymlink {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	if st.Controller != "" {
		if err := a.spdk.DeleteController(ctx, st.Controller); err != nil {
			return err
		}
	}
	if st.OwnsBdev && st.Bdev != "" {
		if err := a.spdk.DeleteMallocBdev(ctx, st.Bdev); err != nil {
			return err
		}
	}
	return nil
}
