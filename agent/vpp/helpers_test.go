package vpp_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.fd.io/govpp/api"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/integration/vppsim"
)

// env is one dataplane (the simulator, or a real VPP when sim is nil) plus
// one connected driver client.
type env struct {
	t      testing.TB
	dir    string // short temp dir for sockets (sun_path is 108 bytes)
	sim    *vppsim.Sim
	client *vpp.Client
	ctx    context.Context
}

// onBoth runs a test that needs no fault injection against vppsim and,
// where this machine has one, a real VPP 25.02: the same calls must get
// the same answers from both.
func onBoth(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("vppsim", func(t *testing.T) { test(t, newEnv(t, vppsim.Options{})) })
	t.Run("real VPP", func(t *testing.T) {
		v := realdp.StartVPP(t, realdp.VPPOptions{Name: "driver"})
		test(t, connect(t, shortTempDir(t), v.APISocket, nil, true))
	})
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vpp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func newEnv(t testing.TB, opts vppsim.Options) *env {
	t.Helper()
	dir := shortTempDir(t)
	if opts.Socket == "" {
		opts.Socket = filepath.Join(dir, "api.sock")
	}
	if opts.RuntimeDir == "" {
		opts.RuntimeDir = filepath.Join(dir, "run")
	}
	sim, err := vppsim.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return connect(t, dir, opts.Socket, sim, len(opts.Exclude) == 0)
}

// connect dials the dataplane at socket and, when wait, waits until the
// client is connected.
func connect(t testing.TB, dir, socket string, sim *vppsim.Sim, wait bool) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	c := vpp.Dial(vpp.Config{Socket: socket, Logger: quietLogger(), RequestTimeout: 5 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	e := &env{t: t, dir: dir, sim: sim, client: c, ctx: ctx}
	if wait {
		wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
		defer wcancel()
		if err := c.WaitConnected(wctx); err != nil {
			t.Fatalf("connect: %v", err)
		}
	}
	return e
}

// path returns a path in the env's temp dir, creating its directory.
func (e *env) path(elem ...string) string {
	p := filepath.Join(append([]string{e.dir}, elem...)...)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// must(f())(t) returns f's value, failing the test on f's error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantRetval asserts err carries VPP retval rv (inspectable with errors.As)
// and matches kind (nil = no kind check).
func wantRetval(t *testing.T, err error, rv int32, kind error) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error with retval %d, got nil", rv)
	}
	var ve api.VPPApiError
	if !errors.As(err, &ve) || int32(ve) != rv {
		t.Fatalf("expected retval %d, got %v", rv, err)
	}
	if got, ok := vpp.Retval(err); !ok || got != rv {
		t.Fatalf("vpp.Retval = %d, %t", got, ok)
	}
	var oe *vpp.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("expected *vpp.OpError, got %T", err)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Fatalf("expected %v to match %v", err, kind)
	}
}

func isSocket(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// waitEvent waits for an event of type typ, returning it.
func waitEvent(t *testing.T, c *vpp.Client, typ vpp.EventType, timeout time.Duration) vpp.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("events closed while waiting for %v", typ)
			}
			if ev.Type == typ {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %v event within %v", typ, timeout)
		}
	}
}
