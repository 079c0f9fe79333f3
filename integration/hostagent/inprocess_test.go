package hostagent_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/host"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/spdksim"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// inProcessHost is a host agent running in the test's process (so that
// `go test -race` sees its goroutines) against simulators.
type inProcessHost struct {
	harness.Host
	cfg host.Config
}

func newInProcessHost(t *testing.T, e *harness.Etcd, name string) *inProcessHost {
	t.Helper()
	dir := harness.ShortTempDir(t)
	h := &inProcessHost{Host: harness.Host{Name: name, Dir: dir,
		VPPSocket: filepath.Join(dir, "vpp", "api.sock"), SPDKSocket: filepath.Join(dir, "spdk.sock"),
		SharedDir: filepath.Join(dir, "shared"), VolumeRoot: filepath.Join(dir, "vhost"), MetricsAddr: harness.FreeAddr(t)}}
	var err error
	if h.VPP, err = vppsim.Start(vppsim.Options{Socket: h.VPPSocket, RuntimeDir: filepath.Join(dir, "vpp")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.VPP.Close() })
	if err := os.MkdirAll(filepath.Join(dir, "spdk"), 0o755); err != nil {
		t.Fatal(err)
	}
	if h.SPDK, err = spdksim.Start(spdksim.Options{RPCSocket: h.SPDKSocket, VhostDir: filepath.Join(dir, "spdk")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.SPDK.Close() })
	h.cfg = host.Config{Host: name, VPPSocket: h.VPPSocket, SPDKSocket: h.SPDKSocket, SharedDir: h.SharedDir,
		VolumeRoots: []string{h.VolumeRoot}, MetricsAddr: h.MetricsAddr, Version: "test", LeaseTTL: 3 * time.Second,
		StateDir: filepath.Join(dir, "state")}
	return h
}

// run starts the agent; stop cancels it and returns what Run returned.
func (h *inProcessHost) run(e *harness.Etcd, cfg host.Config) (stop func() error, done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- host.New(cfg, e.Store, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))).Run(ctx)
	}()
	return func() error { cancel(); return <-errc }, errc
}

// The host agent in this process, under the race detector: /readyz is
// polled from the first moment while Run sets up, intents converge, a VPP
// restart is ridden out, a second agent for the same host returns an
// error naming the first (its own state directory's lock refuses it at
// once; with another one it sees the first renew its lease), cancelling
// Run ends every goroutine and leaves the registration's lease, which the
// next Run resumes.
func TestInProcessHostAgent(t *testing.T) {
	e := harness.StartEtcd(t)
	h := newInProcessHost(t, e, "node1")

	var wg sync.WaitGroup
	pollCtx, stopPolling := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pollCtx.Err() == nil {
			if resp, err := http.Get("http://" + h.MetricsAddr + "/readyz"); err == nil {
				resp.Body.Close()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	stop, done := h.run(e, h.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), harness.WaitTimeout)
	defer cancel()
	if _, err := e.Store.WaitFor(ctx, schema.AgentKey(h.Name), 0, func(kv *store.KV) (bool, error) { return kv != nil, nil }); err != nil {
		t.Fatal(err)
	}

	all := names("p", 4)
	rev := putMemifs(t, e, &h.Host, all, 3)
	for _, c := range all {
		waitIfReady(t, e, &h.Host, c, "net1", rev)
	}
	if err := h.VPP.Restart(); err != nil {
		t.Fatal(err)
	}
	harness.WaitStatus[schema.InterfaceStatus](t, e, ifStatusKey(&h.Host, all[0], "net1"), rev, func(s *schema.InterfaceStatus) bool {
		return s.Ready && len(uspaceIfs(h.VPP.Snapshot())) == 4
	})
	stopPolling()
	wg.Wait()

	cfg2 := h.cfg
	cfg2.MetricsAddr = harness.FreeAddr(t)
	for _, c := range []struct{ stateDir, want string }{
		{h.cfg.StateDir, "in use by another host agent for host node1"},
		{filepath.Join(h.Dir, "elsewhere"), "another host agent is live for host node1"},
	} {
		cfg2.StateDir = c.stateDir
		_, done2 := h.run(e, cfg2)
		select {
		case err := <-done2:
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("second agent with state dir %s: %v, want an error saying %q", c.stateDir, err, c.want)
			}
		case <-time.After(harness.WaitTimeout + h.cfg.LeaseTTL):
			t.Fatal("second agent for the same host still running")
		}
	}
	registered, err := e.Store.Get(context.Background(), schema.AgentKey(h.Name))
	if err != nil || registered == nil {
		t.Fatalf("registration: %+v, %v", registered, err)
	}

	e.Delete(t, ifKey(&h.Host, all[0], "net1"))
	e.WaitGone(t, ifStatusKey(&h.Host, all[0], "net1"))
	select {
	case err := <-done:
		t.Fatalf("agent ended by itself: %v", err)
	default:
	}
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	if kv, err := e.Store.Get(context.Background(), schema.AgentKey(h.Name)); err != nil || kv == nil || kv.Lease != registered.Lease {
		t.Fatalf("registration after Run returned: %+v, %v; want it left under lease %x", kv, err, registered.Lease)
	}
	stop, _ = h.run(e, h.cfg)
	ctx, cancel = context.WithTimeout(context.Background(), harness.WaitTimeout)
	defer cancel()
	if _, err := e.Store.WaitFor(ctx, schema.AgentKey(h.Name), 0, func(kv *store.KV) (bool, error) {
		return kv != nil && kv.ModRevision > registered.ModRevision, nil
	}); err != nil {
		t.Fatal(err)
	}
	if kv, _ := e.Store.Get(context.Background(), schema.AgentKey(h.Name)); kv == nil || kv.Lease != registered.Lease {
		t.Errorf("next Run registered %+v, want the lease %x resumed", kv, registered.Lease)
	}
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
}
