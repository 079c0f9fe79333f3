package vppstate_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/integration/vppsim"
)

// env is one dataplane, the simulator or a real VPP 25.02 (real set),
// with a connected driver client and a socket root of its own.
type env struct {
	client *vpp.Client
	root   string
	real   *realdp.VPP
	ctx    context.Context
}

// onBoth runs test against vppsim and a real VPP: uspace's view of VPP
// must behave alike on both.
func onBoth(t *testing.T, plugins []string, test func(t *testing.T, e *env)) {
	t.Run("vppsim", func(t *testing.T) {
		dir := tempDir(t)
		sim, err := vppsim.Start(vppsim.Options{Socket: filepath.Join(dir, "api.sock"), RuntimeDir: filepath.Join(dir, "run")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sim.Close() })
		test(t, connect(t, dir, sim.Socket(), nil))
	})
	t.Run("real VPP", func(t *testing.T) {
		v := realdp.StartVPP(t, realdp.VPPOptions{Name: "vppstate", Plugins: plugins})
		test(t, connect(t, tempDir(t), v.APISocket, v))
	})
}

func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vst") // short: sun_path is 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func connect(t *testing.T, dir, socket string, real *realdp.VPP) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	c := vpp.Dial(vpp.Config{Socket: socket, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RequestTimeout: 10 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatalf("connect %s: %v", socket, err)
	}
	return &env{client: c, root: filepath.Join(dir, "socks"), real: real, ctx: ctx}
}
