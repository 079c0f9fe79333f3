package volumes

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uspace-io/uspace/schema"
)

func newFilesReconciler(t *testing.T) (*Reconciler, string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"block/sockets", "block/devices"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &Reconciler{Roots: []string{root}, Log: slog.Default()}, root
}

func mknod(t *testing.T, path string, major, minor uint32) {
	t.Helper()
	if err := unix.Mknod(path, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err != nil {
		t.Skipf("mknod needs root: %v", err)
	}
}

func rdev(t *testing.T, path string) (uint32, uint32, bool) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return 0, 0, false
	}
	return unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Mode&unix.S_IFMT == unix.S_IFBLK
}

// A symlink inside a volume root cannot lead the root-owned mknod or
// remove out of it: <root>/block/devices pointing elsewhere makes the node
// fail, and a node over there is never removed.
func TestBlockNodeStaysInsideTheRoot(t *testing.T) {
	r, root := newFilesReconciler(t)
	outside := t.TempDir()
	devices := filepath.Join(root, "block", "devices")
	if err := os.Remove(devices); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, devices); err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(devices, "vol0")
	if err := r.ensureBlockNode(node, 241, 3); err == nil {
		t.Fatal("a node was made through a symlink out of the root")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("made outside the root: %v", entries)
	}
	mknod(t, filepath.Join(outside, "vol0"), 241, 3)
	st := &schema.VolumeStatus{DevicePath: node, Major: 241, Minor: 3}
	if err := r.removeNode(st); err == nil || !strings.Contains(err.Error(), "vol0") {
		t.Fatalf("removing through a symlink out of the root: %v, want an error naming the path", err)
	}
	if _, _, ok := rdev(t, filepath.Join(outside, "vol0")); !ok {
		t.Fatal("a node outside the root was removed")
	}
}

// A file at the node path that uspace did not make (a regular file, a
// block node of other numbers) is an error naming it, and stays; the
// volume's own node is kept as it is.
func TestBlockNodeNeverReplacesAForeignFile(t *testing.T) {
	r, root := newFilesReconciler(t)
	node := filepath.Join(root, "block", "devices", "vol0")
	if err := os.WriteFile(node, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := r.ensureBlockNode(node, 241, 3)
	if err == nil || !strings.Contains(err.Error(), node) || !strings.Contains(err.Error(), "regular file") {
		t.Fatalf("over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(node); string(b) != "data" {
		t.Fatal("the regular file was replaced")
	}
	os.Remove(node)

	mknod(t, node, 241, 9)
	err = r.ensureBlockNode(node, 241, 3)
	if err == nil || !strings.Contains(err.Error(), "block node 241:9") {
		t.Fatalf("over a node of other numbers: %v", err)
	}
	if maj, mnr, ok := rdev(t, node); !ok || maj != 241 || mnr != 9 {
		t.Fatalf("the other node became %d:%d", maj, mnr)
	}
	// Nor is it removed as the volume's.
	if err := r.removeNode(&schema.VolumeStatus{DevicePath: node, Major: 241, Minor: 3}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := rdev(t, node); !ok {
		t.Fatal("a node of other numbers was removed as the volume's")
	}
	os.Remove(node)

	if err := r.ensureBlockNode(node, 241, 3); err != nil {
		t.Fatal(err)
	}
	if err := r.ensureBlockNode(node, 241, 3); err != nil {
		t.Fatalf("the volume's own node: %v", err)
	}
	if err := r.removeNode(&schema.VolumeStatus{DevicePath: node, Major: 241, Minor: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(node); err == nil {
		t.Fatal("the volume's node was not removed")
	}
}

// The socket link replaces only a link uspace made for the controller (to
// a socket named after it); anything else at the path is an error naming
// it, and stays.
func TestSocketLinkNeverReplacesAForeignFile(t *testing.T) {
	r, root := newFilesReconciler(t)
	spdkDir := t.TempDir()
	actual := filepath.Join(spdkDir, "vol0")
	ln, err := net.Listen("unix", actual)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := filepath.Join(root, "block", "sockets", "vol0")

	if err := os.Symlink("/etc/passwd", want); err != nil {
		t.Fatal(err)
	}
	if err := r.linkSocket(actual, want, "vol0"); err == nil || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Fatalf("over a foreign symlink: %v", err)
	}
	if cur, _ := os.Readlink(want); cur != "/etc/passwd" {
		t.Fatalf("the foreign symlink became %q", cur)
	}
	if err := r.removeSocketLink(&schema.VolumeStatus{SocketPath: want, Controller: "vol0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(want); err != nil {
		t.Fatal("a foreign symlink was removed as the volume's")
	}
	os.Remove(want)

	// A link uspace made to an earlier SPDK socket directory is replaced.
	if err := os.Symlink("/run/old-spdk/vol0", want); err != nil {
		t.Fatal(err)
	}
	if err := r.linkSocket(actual, want, "vol0"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := os.Readlink(want); cur != actual {
		t.Fatalf("link is %q, want %q", cur, actual)
	}
	if err := r.removeSocketLink(&schema.VolumeStatus{SocketPath: want, Controller: "vol0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(want); err == nil {
		t.Fatal("the volume's link was not removed")
	}
}
