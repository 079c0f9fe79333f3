package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uspace-io/uspace/store"
	"github.com/uspace-io/uspace/store/embedetcd"
)

// Ready, the server writes its endpoints, with their real ports, to the
// readiness pipe and closes it; the end of its lifeline stops it.
func TestReadyThenStopsAtLifelineEOF(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A raw descriptor for the write end: run takes it over and closes it,
	// as the child does its inherited fd 3.
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	readyR := os.NewFile(uintptr(fds[0]), "ready")
	defer readyR.Close()
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer lifeR.Close()
	ctx := untilEOF(context.Background(), lifeR, log)
	cfg := embedetcd.Config{Dir: filepath.Join(t.TempDir(), "etcd"), ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0"}
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, fds[1], log) }()

	line, err := bufio.NewReader(readyR).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://127.0.0.1:") || strings.HasSuffix(strings.TrimSpace(line), ":0") {
		t.Fatalf("readiness line %q, %v: want the client URL with its real port", line, err)
	}
	if rest, err := io.ReadAll(readyR); err != nil || len(rest) != 0 {
		t.Fatalf("after the line: %q, %v; want the pipe closed", rest, err)
	}
	c, err := store.Connect(context.Background(), store.Config{Endpoints: []string{strings.TrimSpace(line)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Apply(context.Background(), store.Op{Key: "/uspace/v1/networks/n1", Value: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}

	lifeW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stopped by its lifeline: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still serving 10 s after its lifeline closed")
	}
}

func TestRequiresDataDir(t *testing.T) {
	cmd := rootCmd()
	cmd.SetArgs([]string{"--client-url", "http://127.0.0.1:0", "--peer-url", "http://127.0.0.1:0"})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "no data directory") {
		t.Fatalf("no --data-dir: %v", err)
	}
}
