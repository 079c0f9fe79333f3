package binaries

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
	tmp   string
)

// packages maps a binary name to the Go package that builds it.
func pkgOf(name string) string {
	switch name {
	case "etcd":
		return "go.etcd.io/etcd/server/v3"
	case "etcdctl":
		return "go.etcd.io/etcd/etcdctl/v3"
	case "host-local":
		return "github.com/containernetworking/plugins/plugins/ipam/host-local"
	case "bridge", "loopback":
		return "github.com/containernetworking/plugins/plugins/main/" + name
	}
	return "github.com/uspace-io/uspace/cmd/" + name
}

// Path returns an executable for the named binary (a directory under cmd/,
// or etcd/etcdctl), building it once per test process when make did not.
func Path(t testing.TB, name string) string {
	t.Helper()
	p, err := path(name)
	if err != nil {
		t.Fatalf("binary %s: %v", name, err)
	}
	return p
}

func path(name string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[name]; ok {
		return p, nil
	}
	if dir := os.Getenv("USPACE_BIN_DIR"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			built[name] = p
			return p, nil
		}
	}
	if tmp == "" {
		d, err := os.MkdirTemp("", "uspace-bin-")
		if err != nil {
			return "", err
		}
		tmp = d
	}
	p := filepath.Join(tmp, name)
	cmd := exec.Command("go", "build", "-trimpath", "-o", p, pkgOf(name))
	cmd.Dir = moduleRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkgOf(name), err, out)
	}
	built[name] = p
	return p, nil
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Dir returns one directory holding all the named binaries under their own
// names, as CNI_PATH wants them: where they were built when that is one
// place, else a temporary directory of links.
func Dir(t testing.TB, names ...string) string {
	t.Helper()
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = Path(t, n)
	}
	dir := filepath.Dir(paths[0])
	for _, p := range paths[1:] {
		if filepath.Dir(p) != dir {
			dir = t.TempDir()
			for i, p := range paths {
				if err := os.Symlink(p, filepath.Join(dir, names[i])); err != nil {
					t.Fatal(err)
				}
			}
			break
		}
	}
	return dir
}
