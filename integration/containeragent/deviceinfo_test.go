package containeragent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
)

// With --device-info-dir the container agent keeps one NPWG device-info
// file per interface of its container, written once the interface is in
// its VPP and removed when it goes; a memif on an abstract socket is opened
// in the container's own netns ("abstract:<name>"), and a container-side
// memif that names another netns is refused.
func TestDeviceInfoFiles(t *testing.T) {
	e := harness.StartEtcd(t)
	shared, dir := harness.ShortTempDir(t), filepath.Join(t.TempDir(), "devices")
	const id = "ctrdev"
	c := e.StartContainer(t, host, shared, []string{"--container-id", id, "--device-info-dir", dir})
	net1 := memif(shared, id, "net1", "10.1.1.2/24")
	net1.Memif.SocketPath = "@uspace-0123456789abcdef"
	net2 := &schema.ContainerInterface{Host: host, Container: id, Name: "net2", Type: schema.IfTypeVhostUser,
		Vhost: &schema.VhostSpec{Mode: schema.VhostClient, SocketPath: filepath.Join(shared, id+"-net2")}}
	rev := e.Put(t, map[string]schema.Object{
		schema.ContainerMetaKey(host, id): meta(id, "net1", "net2"),
		ifKey(id, "net1"):                 net1,
		ifKey(id, "net2"):                 net2,
	})
	waitReady(t, e, id, "net1", rev)
	waitReady(t, e, id, "net2", rev)
	want := map[string]string{
		"net1.json": `{"type":"memif","version":"1.1.0","memif":{"role":"slave","path":"@uspace-0123456789abcdef","mode":"ethernet"}}`,
		"net2.json": `{"type":"vhost-user","version":"1.1.0","vhost-user":{"mode":"client","path":"` + net2.Vhost.SocketPath + `"}}`,
	}
	files := func() map[string]string {
		got := map[string]string{}
		ents, _ := os.ReadDir(dir)
		for _, en := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, en.Name()))
			got[en.Name()] = string(b)
		}
		return got
	}
	waitFiles(t, files, want)
	var socks []string
	for _, s := range c.VPP.Snapshot().MemifSockets {
		socks = append(socks, s.Filename)
	}
	if !strings.Contains(strings.Join(socks, " "), "abstract:uspace-0123456789abcdef") {
		t.Errorf("container VPP memif sockets %v, want abstract:uspace-0123456789abcdef", socks)
	}

	e.Delete(t, ifKey(id, "net1"))
	e.WaitGone(t, statusKey(id, "net1"))
	delete(want, "net1.json")
	waitFiles(t, files, want)

	// A container-side memif naming a netns: refused, no file.
	bad := memif(shared, id, "net3", "10.1.3.2/24")
	bad.Memif.SocketPath, bad.Memif.Netns = "@uspace-fedcba9876543210", "/var/run/netns/elsewhere"
	rev = e.Put(t, map[string]schema.Object{ifKey(id, "net3"): bad})
	st := harness.WaitStatus[schema.InterfaceStatus](t, e, statusKey(id, "net3"), rev, func(s *schema.InterfaceStatus) bool { return s.Error != "" })
	if !strings.Contains(st.Error, "own network namespace") || st.Retrying {
		t.Errorf("status of a container memif naming a netns: %+v", st)
	}
	waitFiles(t, files, want)

	// While the agent is away net2 goes, status and all, and net1 comes
	// back on another socket; net1's file of an earlier run is still
	// there, and the application keeps a file of its own. The restarted
	// agent removes net2's file, rewrites net1's, leaves the app's alone.
	if err := c.Agent.Stop(10 * time.Second); err != nil {
		t.Fatalf("container agent stop: %v", err)
	}
	e.Delete(t, ifKey(id, "net2"), statusKey(id, "net2"))
	net1.Memif.SocketPath = "@uspace-00112233445566778"
	rev = e.Put(t, map[string]schema.Object{ifKey(id, "net1"): net1})
	stale := `{"type":"memif","version":"1.1.0","memif":{"role":"slave","path":"@uspace-0123456789abcdef","mode":"ethernet"}}`
	app := `{"type":"pci","version":"1.1.0"}`
	for n, v := range map[string]string{"net1.json": stale, "app.json": app} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Agent.Start(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, e, id, "net1", rev)
	waitFiles(t, files, map[string]string{
		"net1.json": strings.Replace(stale, "0123456789abcdef", "00112233445566778", 1),
		"app.json":  app,
	})
}

func waitFiles(t *testing.T, files func() map[string]string, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := files()
		same := len(got) == len(want)
		for k, v := range want {
			same = same && got[k] == v
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("device-info files %v, want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
