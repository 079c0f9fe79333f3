package embedetcd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Config describes a single-node etcd run inside the process.
type Config struct {
	// Dir holds the data; a restart on the same Dir keeps it.
	Dir string
	// ClientURL is where clients connect (default http://127.0.0.1:2379).
	// Port 0 picks a free port; Endpoints reports the real one.
	ClientURL string
	// PeerURL is the raft address (default http://127.0.0.1:2380). A single
	// node has no peers, but etcd still needs one.
	PeerURL string
	// Name is the member name (default "uspace").
	Name string
}

const (
	readyTimeout = time.Minute
	// Without compaction a long-running default set-up grows its history
	// until etcd hits its space quota and refuses writes. An hour keeps
	// enough history for any watcher that is merely reconnecting; one that
	// falls further behind resyncs.
	compactionRetention = "1h"
)

// Etcd is a running in-process etcd.
type Etcd struct {
	etcd      *embed.Etcd
	endpoints []string
	logLevel  zap.AtomicLevel
}

// Start starts a single-node etcd and returns once it serves
// clients, or fails when it cannot within a minute or before ctx ends.
func Start(ctx context.Context, cfg Config) (*Etcd, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded etcd: no data directory given")
	}
	if cfg.ClientURL == "" {
		cfg.ClientURL = "http://127.0.0.1:2379"
	}
	if cfg.PeerURL == "" {
		cfg.PeerURL = "http://127.0.0.1:2380"
	}
	if cfg.Name == "" {
		cfg.Name = "uspace"
	}
	clientURL, err := url.Parse(cfg.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: client URL %q: %w", cfg.ClientURL, err)
	}
	peerURL, err := url.Parse(cfg.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: peer URL %q: %w", cfg.PeerURL, err)
	}

	ecfg := embed.NewConfig()
	ecfg.Name = cfg.Name
	ecfg.Dir = cfg.Dir
	ecfg.ListenClientUrls = []url.URL{*clientURL}
	ecfg.AdvertiseClientUrls = []url.URL{*clientURL}
	ecfg.ListenPeerUrls = []url.URL{*peerURL}
	ecfg.AdvertisePeerUrls = []url.URL{*peerURL}
	ecfg.InitialCluster = ecfg.InitialClusterFromName(cfg.Name)
	// Errors only; the level is raised on Close, where etcd logs its own
	// listeners closing as errors.
	level := zap.NewAtomicLevelAt(zapcore.ErrorLevel)
	lcfg := logutil.DefaultZapLoggerConfig
	lcfg.Level = level
	logger, err := lcfg.Build()
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: creating its logger: %w", err)
	}
	ecfg.LogLevel = "error"
	ecfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(logger)
	ecfg.AutoCompactionMode = embed.CompactorModePeriodic
	ecfg.AutoCompactionRetention = compactionRetention

	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd in %s: starting: %w", cfg.Dir, err)
	}
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s: failed while starting: %w", cfg.Dir, err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s: not ready after %v", cfg.Dir, readyTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s: waiting until ready: %w", cfg.Dir, ctx.Err())
	}
	out := &Etcd{etcd: e, logLevel: level}
	for _, l := range e.Clients {
		out.endpoints = append(out.endpoints, clientURL.Scheme+"://"+l.Addr().String())
	}
	return out, nil
}

// Endpoints are the client URLs the server listens on, with real ports.
func (e *Etcd) Endpoints() []string { return e.endpoints }

// Err delivers an error if the server fails after starting, so a process
// that depends on it can stop instead of serving without a store.
func (e *Etcd) Err() <-chan error { return e.etcd.Err() }

// Close stops the server; data stays in Dir.
func (e *Etcd) Close() {
	e.logLevel.SetLevel(zapcore.FatalLevel)
	e.etcd.Close()
}
