package deviceinfo

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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

// Sweep removes the files Write made for interfaces it is not told to
// keep, and temporaries of cut-short writes; it leaves the kept ones and
// every file it did not make.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	info := For(&schema.ContainerInterface{Memif: &schema.MemifSpec{Role: schema.MemifSlave, Mode: schema.MemifEthernet, SocketPath: "@uspace-0011"}})
	for _, n := range []string{"net1", "net2"} {
		if err := Write(filepath.Join(dir, n+".json"), info); err != nil {
			t.Fatal(err)
		}
	}
	others := map[string]string{
		"app.json":       `{"type":"pci","version":"1.1.0"}`,
		"notes.txt":      "x",
		"broken.json":    "{",
		".net3.json.123": "",
	}
	for n, v := range others {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Sweep(dir, func(ifname string) bool { return ifname == "net1" }); err != nil {
		t.Fatal(err)
	}
	var got []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		got = append(got, e.Name())
	}
	want := []string{"app.json", "broken.json", "net1.json", "notes.txt"}
	if !slices.Equal(got, want) {
		t.Errorf("after the sweep: %v, want %v", got, want)
	}
	if err := Sweep(filepath.Join(dir, "none"), func(string) bool { return false }); err != nil {
		t.Errorf("sweep of a missing directory: %v", err)
	}
}
