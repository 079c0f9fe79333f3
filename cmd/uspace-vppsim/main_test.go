package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/vppsim"
)

func TestRunServesAndCleansUp(t *testing.T) {
	dir, err := os.MkdirTemp("", "vsc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	o := options{
		socket:     filepath.Join(dir, "api.sock"),
		runtimeDir: filepath.Join(dir, "run"),
		control:    filepath.Join(dir, "ctl.sock"),
		stateDump:  filepath.Join(dir, "state.json"),
		version:    "x",
		logLevel:   "error",
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() { done <- run(ctx, o, &stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := vppsim.Control(o.control, vppsim.ControlRequest{Op: vppsim.OpSnapshot}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("control socket never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := vppsim.Control(o.control, vppsim.ControlRequest{Op: vppsim.OpSnapshot})
	if err != nil || resp.State.Version != "x" || resp.State.Socket != o.socket {
		t.Fatalf("snapshot: %v %+v", err, resp.State)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{o.socket, o.control} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Fatalf("%s left behind: %v", p, err)
		}
	}
}

func TestRunRejectsBadLogLevel(t *testing.T) {
	err := run(context.Background(), options{logLevel: "loud"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Fatalf("err = %v", err)
	}
}

func TestDumpStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	st := vppsim.State{Generation: 3, Interfaces: []vppsim.InterfaceState{{Name: "local0"}}}
	if err := dumpState(st, path); err != nil {
		t.Fatal(err)
	}
	var got vppsim.State
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &got); err != nil || got.Generation != 3 || got.Interfaces[0].Name != "local0" {
		t.Fatalf("dumped %s: %v", b, err)
	}
}
