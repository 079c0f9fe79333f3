package kube

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/uspace-io/uspace/integration/realdp"
)

// The prebuilt binaries, as ../shared/kubernetes/README.md lists them.
const (
	kubeTarball   = "kubernetes-1.34.4-x86_64.tar.zst"
	multusTarball = "multus-4.2.2-crictl-1.34.0-x86_64.tar.zst"
)

// commands the node needs from the machine (`make deps` installs them).
var commands = []string{"containerd", "runc", "ctr", "zstd", "docker", "gcc", "openssl", "ip", "mount", "umount"}

var (
	findOnce sync.Once
	missing  string
)

// sourceDir is where the tarballs are: USPACE_KUBERNETES_DIR, else
// ../shared/kubernetes beside the module (the Makefile's default too).
func sourceDir() string {
	if d := os.Getenv("USPACE_KUBERNETES_DIR"); d != "" {
		return d
	}
	return filepath.Join(moduleRoot(), "..", "shared", "kubernetes")
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Missing says what this machine lacks for a node, "" when it has all:
// root, the tarballs, the commands, a Docker daemon to build the images
// with, and the real VPP and SPDK.
func Missing() string {
	findOnce.Do(func() { missing = findMissing() })
	return missing
}

func findMissing() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	for _, f := range []string{kubeTarball, multusTarball} {
		if _, err := os.Stat(filepath.Join(sourceDir(), f)); err != nil {
			return fmt.Sprintf("no prebuilt Kubernetes: %v (USPACE_KUBERNETES_DIR)", err)
		}
	}
	var lacking []string
	for _, c := range commands {
		if _, err := exec.LookPath(c); err != nil {
			lacking = append(lacking, c)
		}
	}
	if len(lacking) > 0 {
		return fmt.Sprintf("commands missing: %s (run `make deps`)", strings.Join(lacking, ", "))
	}
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		return fmt.Sprintf("no Docker daemon to build the images: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return realdp.Missing()
}

// Need skips the test, in one line, on a machine that cannot run a node.
func Need(t testing.TB) {
	t.Helper()
	if m := Missing(); m != "" {
		t.Skipf("Kubernetes node: %s", m)
	}
}

// unpack makes the binaries of both tarballs available in one directory,
// unpacked once per version into the build's bin directory (or a
// temporary one) and reused while the tarballs are the same.
func unpack() (string, error) {
	base := os.Getenv("USPACE_BIN_DIR")
	if base == "" {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "kubernetes")
	var stamp strings.Builder
	for _, f := range []string{kubeTarball, multusTarball} {
		fi, err := os.Stat(filepath.Join(sourceDir(), f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&stamp, "%s %d %d\n", f, fi.Size(), fi.ModTime().Unix())
	}
	stampFile := filepath.Join(dir, ".unpacked")
	if b, err := os.ReadFile(stampFile); err == nil && string(b) == stamp.String() {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(base, ".kubernetes-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for _, f := range []string{kubeTarball, multusTarball} {
		sh := fmt.Sprintf("zstd -q -d --long=27 -c %q | tar -x -C %q", filepath.Join(sourceDir(), f), tmp)
		if out, err := exec.Command("sh", "-c", sh).CombinedOutput(); err != nil {
			return "", fmt.Errorf("unpack %s: %w: %s", f, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".unpacked"), []byte(stamp.String()), 0o644); err != nil {
		return "", err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, os.Rename(tmp, dir)
}
