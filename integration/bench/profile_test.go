package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/host"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/spdksim"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// TestProfileResync is not part of the benchmark: it runs the host agent
// in this process (so it can be profiled) through the same initial, adopt
// and cold resyncs, and writes CPU profiles and a heap profile to the
// directory named by USPACE_BENCH_PROFILE. USPACE_BENCH_INTENTS sets the
// size (default 10,000). Read them with `go tool pprof -top <file>`; the
// simulator runs in the same process, so its frames (integration/vppsim)
// show up too.
func TestProfileResync(t *testing.T) {
	dir := os.Getenv("USPACE_BENCH_PROFILE")
	if dir == "" {
		t.Skip("set USPACE_BENCH_PROFILE=<dir> to profile the host agent's resyncs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("USPACE_BENCH_INTENTS")); err == nil && v > 0 {
		n = v
	}
	e := startEtcd(t, 1)
	hostDir := harness.ShortTempDir(t)
	sockDir := filepath.Join(hostDir, "shared")
	cfg := host.Config{Host: bigHost, VPPSocket: filepath.Join(hostDir, "vpp", "api.sock"), SPDKSocket: filepath.Join(hostDir, "spdk.sock"),
		SharedDir: sockDir, VolumeRoots: []string{filepath.Join(hostDir, "vhost")}, MetricsAddr: harness.FreeAddr(t), LeaseTTL: 5 * time.Second, Version: "bench"}
	sim, err := vppsim.Start(vppsim.Options{Socket: cfg.VPPSocket, RuntimeDir: filepath.Join(hostDir, "vpp")})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	vhost := filepath.Join(cfg.VolumeRoots[0], "block", "sockets")
	if err := os.MkdirAll(vhost, 0o755); err != nil {
		t.Fatal(err)
	}
	spdk, err := spdksim.Start(spdksim.Options{RPCSocket: cfg.SPDKSocket, VhostDir: vhost})
	if err != nil {
		t.Fatal(err)
	}
	defer spdk.Close()

	var ops []store.Op
	for i := range n {
		ctr := fmt.Sprintf("r%05d", i)
		v, err := schema.Encode(&schema.HostInterface{Host: bigHost, Container: ctr, Name: "net1", Type: schema.IfTypeMemif,
			NetType: schema.NetTypeBridge, Network: "bench-net", Bridge: 4, MAC: testMAC(i).String(),
			Memif: &schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet, SocketPath: filepath.Join(sockDir, "memif-"+ctr+"-net1.sock")}})
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, store.Op{Key: schema.InterfaceKey(bigHost, ctr, "net1"), Value: v})
		if len(ops) == 100 || i == n-1 {
			if _, err := e.Store.Apply(context.Background(), ops...); err != nil {
				t.Fatal(err)
			}
			ops = nil
		}
	}

	run := func(name string) {
		t.Helper()
		f, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st := connectStore(t, e.Endpoints)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		go func() { done <- host.New(cfg, st, quiet).Run(ctx) }()
		waitMetrics(t, "http://"+cfg.MetricsAddr+"/metrics", n, 8*time.Minute)
		took := time.Since(start)
		pprof.StopCPUProfile()
		runtime.GC()
		hf, err := os.Create(filepath.Join(dir, name+".heap.pprof"))
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.Lookup("heap").WriteTo(hf, 0); err != nil {
			t.Fatal(err)
		}
		hf.Close()
		cancel()
		if err := <-done; err != nil {
			t.Logf("agent: %v", err)
		}
		t.Logf("%s resync of %d interfaces in process: %v; profiles in %s", name, n, took, dir)
	}
	run("initial")
	run("adopt")
	if err := sim.Restart(); err != nil {
		t.Fatal(err)
	}
	run("cold")
}

// waitMetrics polls an agent's /metrics until its interface controller
// reconciled n keys and the sweep with nothing left queued, and returns
// the failed reconciles.
func waitMetrics(t *testing.T, url string, n int, limit time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(limit)
	var ok, depth float64
	for {
		if m, err := scrapeOne(url); err == nil {
			ok = m.sum("uspace_reconciles_total", "controller", "interfaces", "result", "ok")
			// Converged means the statuses are in etcd too.
			depth = m.sum("uspace_queue_depth", "controller", "interfaces") + m.sum("uspace_status_writes_pending")
			if ok >= float64(n+1) && depth == 0 {
				return m.sum("uspace_reconciles_total", "controller", "interfaces", "result", "error")
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent at %s not converged after %v: %v reconciles ok, queue %v", url, limit, ok, depth)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
