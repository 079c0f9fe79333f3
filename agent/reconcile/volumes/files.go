package volumes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/uspace-io/uspace/schema"
)

// Every file call for a volume goes through an os.Root opened on the
// configured root (--volume-root) that holds the path: a symlink inside
// the root (say <root>/block/devices -> /etc) cannot lead the agent, which
// runs as root, to make or remove a file elsewhere. And the agent removes
// only files it can tell it made: a block node with the volume's numbers,
// a symlink to the controller's socket.

// openRoot opens the configured root that lexically holds path and returns
// path relative to it.
func (r *Reconciler) openRoot(path string) (*os.Root, string, error) {
	for _, root := range r.Roots {
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		rt, err := os.OpenRoot(root)
		if err != nil {
			return nil, "", fmt.Errorf("open volume root %s: %w", root, err)
		}
		return rt, rel, nil
	}
	return nil, "", refuse("%v", schema.UnderRoot("volume path", path, r.Roots))
}

// makeFiles creates v's directories, makes SPDK's socket visible where
// Kata looks for it and makes the device node.
func (r *Reconciler) makeFiles(v *schema.Volume, socket string) error {
	for _, dir := range []string{filepath.Dir(v.SocketPath()), filepath.Dir(v.DevicePath())} {
		if err := r.inRoot(dir, func(rt *os.Root, rel string) error { return rt.MkdirAll(rel, 0o755) }); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := r.linkSocket(socket, v.SocketPath(), v.Device); err != nil {
		return err
	}
	return r.ensureBlockNode(v.DevicePath(), v.Type.Major(), v.Minor)
}

// inRoot runs f on path inside the root that holds it.
func (r *Reconciler) inRoot(path string, f func(rt *os.Root, rel string) error) error {
	rt, rel, err := r.openRoot(path)
	if err != nil {
		return err
	}
	defer rt.Close()
	return f(rt, rel)
}

// linkSocket makes the controller's socket visible at want. SPDK creates it
// in its own -S directory; when the volume uses another root a symlink
// bridges the two.
func (r *Reconciler) linkSocket(actual, want, ctrlr string) error {
	if actual == "" {
		return fmt.Errorf("SPDK reports no socket for the controller expected at %s", want)
	}
	if actual != want {
		err := r.inRoot(want, func(rt *os.Root, rel string) error {
			fi, err := rt.Lstat(rel)
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return fmt.Errorf("vhost-user socket link %s: %w", want, err)
			case fi.Mode().Type() != fs.ModeSymlink:
				return refuse("vhost-user socket path %s is taken by a %s uspace did not make; SPDK's socket is %s", want, fileKind(fi), actual)
			default:
				cur, err := rt.Readlink(rel)
				if err == nil && cur == actual {
					return nil
				}
				if !socketLink(cur, ctrlr) {
					return refuse("vhost-user socket path %s is a symlink to %s, which uspace did not make; SPDK's socket is %s", want, cur, actual)
				}
				if err := rt.Remove(rel); err != nil {
					return fmt.Errorf("replace stale socket link %s: %w", want, err)
				}
			}
			if err := rt.Symlink(actual, rel); err != nil {
				return fmt.Errorf("link vhost-user socket %s -> %s: %w", want, actual, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// SPDK's own path: looked at, never changed.
	fi, err := os.Stat(actual)
	if err != nil {
		return fmt.Errorf("vhost-user socket %s: %w", actual, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("vhost-user socket %s is not a socket (%s)", actual, fileKind(fi))
	}
	return nil
}

// socketLink says whether a symlink to target is one uspace makes for
// controller ctrlr: SPDK names a controller's socket after it.
func socketLink(target, ctrlr string) bool {
	return filepath.IsAbs(target) && filepath.Base(target) == ctrlr
}

// ensureBlockNode creates the block node Kata resolves by major:minor. A
// file already at path is kept if it is that node, and otherwise refused,
// named, and left alone: uspace did not make it (the volume driver never
// hands out a minor another node of the root holds, and a node uspace made
// for an earlier intent went with that intent's status).
func (r *Reconciler) ensureBlockNode(path string, major, minor uint32) error {
	want := unix.Mkdev(major, minor)
	return r.inRoot(path, func(rt *os.Root, rel string) error {
		fi, err := rt.Lstat(rel)
		switch {
		case err == nil && isBlockNode(fi, want):
			return nil
		case err == nil:
			return refuse("device node path %s is taken by a %s uspace did not make (the volume needs block %d:%d): remove it, or give the volume another -o device", path, fileKind(fi), major, minor)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("stat device node %s: %w", path, err)
		}
		dir, err := rt.Open(filepath.Dir(rel))
		if err != nil {
			return fmt.Errorf("open directory of device node %s: %w", path, err)
		}
		defer dir.Close()
		if err := unix.Mknodat(int(dir.Fd()), filepath.Base(rel), unix.S_IFBLK|0o660, int(want)); err != nil {
			return fmt.Errorf("mknod %s b %d %d: %w", path, major, minor, err)
		}
		return nil
	})
}

// removeNode removes the device node st recorded if it is still the
// block node uspace made.
func (r *Reconciler) removeNode(st *schema.VolumeStatus) error {
	if st.DevicePath == "" {
		return nil
	}
	return r.removeIf(st.DevicePath, func(_ *os.Root, _ string, fi fs.FileInfo) bool {
		return isBlockNode(fi, unix.Mkdev(st.Major, st.Minor))
	})
}

// removeSocketLink removes the symlink uspace made to the controller's
// socket; the socket itself belongs to SPDK.
func (r *Reconciler) removeSocketLink(st *schema.VolumeStatus) error {
	if st.SocketPath == "" {
		return nil
	}
	return r.removeIf(st.SocketPath, func(rt *os.Root, rel string, fi fs.FileInfo) bool {
		if fi.Mode().Type() != fs.ModeSymlink {
			return false
		}
		target, err := rt.Readlink(rel)
		return err == nil && socketLink(target, st.Controller)
	})
}

// removeIf removes path if ours says it is uspace's; a path outside the
// roots or already gone is left as it is.
func (r *Reconciler) removeIf(path string, ours func(rt *os.Root, rel string, fi fs.FileInfo) bool) error {
	err := r.inRoot(path, func(rt *os.Root, rel string) error {
		fi, err := rt.Lstat(rel)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return fmt.Errorf("look at %s before removing it: %w", path, err)
		case !ours(rt, rel, fi):
			return nil
		}
		if err := rt.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		return nil
	})
	var ref *refusal
	if errors.As(err, &ref) {
		return nil // outside the roots: never the agent's to remove
	}
	return err
}

func isBlockNode(fi fs.FileInfo, dev uint64) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode().Type() == fs.ModeDevice && uint64(st.Rdev) == dev
}

// fileKind names what a file is, for errors: its type, and a device
// node's numbers.
func fileKind(fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return "regular file"
	case t == fs.ModeDevice || t == fs.ModeDevice|fs.ModeCharDevice:
		kind := "block"
		if t&fs.ModeCharDevice != 0 {
			kind = "character"
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			return fmt.Sprintf("%s node %d:%d", kind, unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
		}
		return kind + " node"
	default:
		return t.String()
	}
}
