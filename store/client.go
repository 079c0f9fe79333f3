package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/logutil"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/uspace-io/uspace/store/etcdconf"
)

// Client is a connection to etcd with uspace's access patterns on top.
type Client struct {
	etcd *clientv3.Client
}

// New wraps an etcd client that the caller already has (tests, tools that
// dial etcd themselves). Close closes it.
func New(etcd *clientv3.Client) *Client { return &Client{etcd: etcd} }

// Etcd returns the underlying etcd client for calls this package does not
// wrap (auth administration, maintenance).
func (c *Client) Etcd() *clientv3.Client { return c.etcd }

// Close releases the connection; running ListWatch, WaitFor and Register
// calls end with an error.
func (c *Client) Close() error { return c.etcd.Close() }

// Keepalive pings let a client notice a connection that went silent (a
// black-holed member) instead of waiting on it forever. The interval stays
// above etcd's default --grpc-keepalive-min-time (5s) so the server does not
// reject the pings.
const (
	keepAliveTime    = 10 * time.Second
	keepAliveTimeout = 5 * time.Second
)

// reconnectBackoff is gRPC's default reconnect backoff but capped at 2 s.
var reconnectBackoff = grpcbackoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second}

// Connect dials etcd as cfg says and checks that an endpoint answers within
// cfg.DialTimeout, so a wrong address, certificate or password fails here
// with a clear error rather than later inside a watch. ctx can cut the
// check short; it does not bound the client's life.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = []string{etcdconf.DefaultEndpoint}
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = etcdconf.DefaultDialTimeout
	}
	where := strings.Join(cfg.Endpoints, ",")

	password, err := cfg.ResolvePassword()
	if err != nil {
		return nil, err
	}
	ccfg := clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: keepAliveTimeout,
		Username:             cfg.Username,
		Password:             password,
		Logger:               etcdLogger(),
		// Blocking for the dial is what turns a refused connection or a
		// failed TLS handshake into an error that says so; otherwise all
		// the caller would see is a deadline.
		//
		// Reconnects back off to 2 s at most, not gRPC's two minutes: a
		// host agent back within its lease's TTL after an etcd outage
		// resumes the lease, and peers never see the host leave.
		DialOptions: []grpc.DialOption{grpc.WithBlock(), grpc.WithReturnConnectionError(),
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff, MinConnectTimeout: cfg.DialTimeout})},
	}
	if ccfg.TLS, err = cfg.TLSConfig(); err != nil {
		return nil, err
	}

	etcd, err := clientv3.New(ccfg)
	if err != nil {
		// An answer from etcd (with a user set, New authenticates: a wrong
		// password) versus no usable connection at all. etcd's answers
		// never echo the password.
		if errors.As(err, new(rpctypes.EtcdError)) {
			return nil, fmt.Errorf("connecting to etcd at %s as %q: %w", where, cfg.Username, err)
		}
		return nil, unreachable(ctx, cfg, where, err)
	}
	checkCtx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	// Member list is the one read every identity may do (no key permission
	// needed); serializable, because this checks reachability, not quorum.
	if _, err := etcd.MemberList(checkCtx, clientv3.WithSerializable()); err != nil {
		etcd.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connecting to etcd at %s: %w", where, ctx.Err())
		}
		return nil, unreachable(ctx, cfg, where, err)
	}
	return &Client{etcd: etcd}, nil
}

// etcdLogger is the etcd client's own log: errors only, to stderr, in etcd's
// default encoding, but without the sampler of etcd's default logger,
// whose counters (~460 KB, allocated per logger) every process that dials
// once and exits (the CNI plugin, per call) would pay for logs it almost
// never writes.
func etcdLogger() *zap.Logger {
	enc := zapcore.NewJSONEncoder(logutil.DefaultZapLoggerConfig.EncoderConfig)
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(os.Stderr), zapcore.ErrorLevel))
}

// unreachable says why no connection came about: a TLS refusal (named by
// the server's alert, which gRPC may have lost) or no answer at all.
func unreachable(ctx context.Context, cfg Config, where string, err error) error {
	if tlsErr := DiagnoseTLS(context.WithoutCancel(ctx), cfg); tlsErr != nil &&
		(strings.Contains(tlsErr.Error(), "tls:") || strings.Contains(tlsErr.Error(), "x509:")) {
		return fmt.Errorf("connecting to etcd at %s: %w", where, tlsErr)
	}
	return fmt.Errorf("etcd at %s unreachable within %v: %w", where, cfg.DialTimeout, err)
}
