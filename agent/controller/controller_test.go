package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uspace-io/uspace/store"
)

// A deleted key whose reconcile keeps failing (the dataplane is away)
// backs off; EnqueueAll, called when the dataplane is back, runs it again
// at once rather than after its backoff.
func TestEnqueueAllRequeuesFailingDeletes(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	var calls atomic.Int32
	done := make(chan struct{})
	c := New("test", func(_ context.Context, key string, kv *store.KV) error {
		calls.Add(1)
		if failing.Load() {
			return errors.New("dataplane away")
		}
		if key == "gone" && kv == nil {
			close(done)
		}
		return nil
	}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, 1)
	c.Replace([]store.KV{{Key: "gone", Value: []byte("x")}})
	c.Delete("gone")
	// Seven failures (3.2 s in all) put the next try 50ms*2^7 = 6.4 s away.
	deadline := time.Now().Add(time.Minute)
	for calls.Load() < 7 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d reconciles", calls.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	failing.Store(false)
	c.EnqueueAll()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the failing delete waited out its backoff instead of running again on EnqueueAll")
	}
}

// A gated controller reconciles nothing while its gate is closed, and
// catches up on every key queued meanwhile once it opens.
func TestGateHoldsWorkers(t *testing.T) {
	var open atomic.Bool
	opened := make(chan struct{})
	var calls atomic.Int32
	c := New("test", func(context.Context, string, *store.KV) error {
		if !open.Load() {
			t.Error("reconcile while the gate is closed")
		}
		calls.Add(1)
		return nil
	}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.Gate(func(ctx context.Context) error {
		select {
		case <-opened:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{})
	go func() { c.Run(ctx, 2); close(ran) }()
	c.Replace([]store.KV{{Key: "a"}, {Key: "b"}, {Key: "c"}})
	time.Sleep(200 * time.Millisecond)
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d reconciles behind a closed gate", n)
	}
	open.Store(true)
	close(opened)
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 keys reconciled once the gate opened", calls.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-ran
}
