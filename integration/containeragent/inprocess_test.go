package containeragent_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/container"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// The container agent in this process, under the race detector: it finds
// its container by the Docker ID of the sandbox (mountinfo, as with
// --net=container:<sandbox>), converges, rides out a VPP restart, and
// returns an error instead of hanging when its etcd client is closed
// under it (the watch can never work again).
func TestInProcessContainerAgent(t *testing.T) {
	e := harness.StartEtcd(t)
	shared := harness.ShortTempDir(t)
	dir := harness.ShortTempDir(t)
	sim, err := vppsim.Start(vppsim.Options{Socket: filepath.Join(dir, "api.sock"), RuntimeDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	const sandbox = "5b1e5a7c0d3b2a19e8f76c5b4a3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"
	const app = "6c1e5a7c0d3b2a19e8f76c5b4a3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"
	proc := filepath.Join(dir, "proc")
	if err := os.MkdirAll(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	for f, content := range map[string]string{
		"cgroup":    "12:pids:/docker/" + app + "\n",
		"mountinfo": "1 2 0:1 /var/lib/docker/containers/" + sandbox + "/hostname /etc/hostname rw - ext4 /dev/vda rw\n",
	} {
		if err := os.WriteFile(filepath.Join(proc, "self", f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rev := e.Put(t, map[string]schema.Object{
		schema.ContainerMetaKey(host, sandbox): meta(sandbox, "net1"),
		ifKey(sandbox, "net1"):                 memif(shared, sandbox, "net1", "10.1.1.7/24"),
	})

	st, err := store.Connect(context.Background(), store.Config{Endpoints: e.Endpoints})
	if err != nil {
		t.Fatal(err)
	}
	a := container.New(container.Config{Host: host, VPPSocket: sim.Socket(), SharedDir: shared, ProbeInterval: 200 * time.Millisecond,
		Identity: container.Identity{ProcRoot: proc, Hostname: sandbox[:12]}},
		st, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()

	waitReady(t, e, sandbox, "net1", rev)
	if err := sim.Restart(); err != nil {
		t.Fatal(err)
	}
	// A VPP restarted under the agent is re-populated, and the status may
	// end as it was (the outage and the repair batched into no change):
	// no etcd event to wait on, so the simulator is polled, bounded.
	deadline := time.Now().Add(harness.WaitTimeout)
	for len(sim.Snapshot().Memifs) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("memif not re-created after the VPP restart: %+v", sim.Snapshot().Memifs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitReady(t, e, sandbox, "net1", rev)

	st.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned nil after its etcd client was closed")
		}
		t.Logf("Run: %v", err)
	case <-time.After(harness.WaitTimeout):
		t.Fatal("Run still running after its etcd client was closed")
	}
}
