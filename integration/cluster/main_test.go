package cluster_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) {
	// The CNI plugin reads /etc/uspace/uspace.conf unless USPACE_CONFIG
	// says otherwise: the machine's own config must not leak into a test.
	dir, err := os.MkdirTemp("", "uspace-cluster-conf-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	empty := filepath.Join(dir, "uspace.conf")
	if err := os.WriteFile(empty, []byte("{}"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("USPACE_CONFIG", empty)
	os.Unsetenv("USPACE_HOST")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
