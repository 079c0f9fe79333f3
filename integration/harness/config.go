package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// RunIsolated runs a test binary's tests with the CNI plugin's machine
// config out of reach: the plugin reads /etc/uspace/uspace.conf unless
// USPACE_CONFIG names another file, so it names an empty one, and
// USPACE_HOST is unset. It returns m.Run's code, for os.Exit.
func RunIsolated(m *testing.M) int {
	dir, err := os.MkdirTemp("", "uspace-conf-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	empty := filepath.Join(dir, "uspace.conf")
	if err := os.WriteFile(empty, []byte("{}"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Setenv("USPACE_CONFIG", empty)
	os.Unsetenv("USPACE_HOST")
	return m.Run()
}
