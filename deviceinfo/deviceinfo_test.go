package deviceinfo

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/uspace-io/uspace/schema"
)

// The spec's JSON, field for field, for both device types; nothing for an
// interface without either.
func TestForAndWrite(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		ci   schema.ContainerInterface
		want string
	}{
		{schema.ContainerInterface{Memif: &schema.MemifSpec{Role: schema.MemifSlave, Mode: schema.MemifIP, SocketPath: "@uspace-0011"}},
			`{"type":"memif","version":"1.1.0","memif":{"role":"slave","path":"@uspace-0011","mode":"ip"}}`},
		{schema.ContainerInterface{Vhost: &schema.VhostSpec{Mode: schema.VhostClient, SocketPath: "/run/shared/v"}},
			`{"type":"vhost-user","version":"1.1.0","vhost-user":{"mode":"client","path":"/run/shared/v"}}`},
	} {
		path := filepath.Join(dir, "sub", "net1.json")
		if err := Write(path, For(&tc.ci)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != tc.want {
			t.Errorf("file %s (%v), want %s", b, err, tc.want)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o444 {
			t.Errorf("mode %v (%v), want r--r--r--", fi.Mode(), err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "sub")); len(ents) != 1 {
		t.Errorf("%d files in the directory, want the one (no temporary left)", len(ents))
	}
	if For(&schema.ContainerInterface{}) != nil {
		t.Error("device-info for an interface that is neither memif nor vhost-user")
	}
	path := filepath.Join(dir, "sub", "net1.json")
	for range 2 {
		if err := Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Remove: %v", err)
	}
}
