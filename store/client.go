package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
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
	// passwordFileMax bounds what is read from a misconfigured path (a
	// device, a large file) before deciding it cannot be a password.
	passwordFileMax = 4096
)

// reconnectBackoff is gRPC's default reconnect backoff but capped at 2 s.
var reconnectBackoff = grpcbackoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second}

// Connect dials etcd as cfg says and checks that an endpoint answers within
// cfg.DialTimeout, so a wrong address, certificate or password fails here
// with a clear error rather than later inside a watch. ctx can cut the
// check short; it does not bound the client's life.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = []string{defaultEndpoint}
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	where := strings.Join(cfg.Endpoints, ",")

	password, err := cfg.password()
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
	if ccfg.TLS, err = cfg.tls(); err != nil {
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

// tls returns nil when no TLS file is configured: https:// endpoints then
// still get TLS, verified against the system roots.
func (c Config) tls() (*tls.Config, error) {
	if c.CACert == "" && c.Cert == "" && c.Key == "" {
		return nil, nil
	}
	if (c.Cert == "") != (c.Key == "") {
		return nil, fmt.Errorf("etcd TLS: client certificate (%q) and key (%q) must be given together", c.Cert, c.Key)
	}
	if c.CACert != "" {
		// etcd's loader accepts a file without a single certificate and
		// leaves every handshake to fail later with a vaguer error.
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("etcd TLS: reading CA: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd TLS: CA file %s holds no PEM certificate", c.CACert)
		}
	}
	info := transport.TLSInfo{CertFile: c.Cert, KeyFile: c.Key, TrustedCAFile: c.CACert}
	cfg, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd TLS: loading CA %q, certificate %q, key %q: %w", c.CACert, c.Cert, c.Key, err)
	}
	return cfg, nil
}

func (c Config) password() (string, error) {
	password := c.Password
	switch {
	case c.Password != "" && c.PasswordFile != "":
		return "", fmt.Errorf("etcd password given both in %s and as file %s: set only one", EnvPassword, c.PasswordFile)
	case c.PasswordFile != "":
		var err error
		if password, err = readPasswordFile(c.PasswordFile); err != nil {
			return "", err
		}
	}
	switch {
	case c.Username != "" && password == "":
		return "", fmt.Errorf("etcd user %q given without a password (set a password file or %s)", c.Username, EnvPassword)
	case c.Username == "" && password != "":
		return "", errors.New("etcd password given without a user name")
	}
	return password, nil
}

// readPasswordFile refuses files others can read: a leaked etcd password
// gives write access to a host's intents. Errors name the file and its mode,
// never its content.
func readPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("opening etcd password file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the checked file is the read one.
	info, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("checking etcd password file %s: %w", path, err)
	}
	if mode := info.Mode().Perm(); mode&0o077 != 0 {
		return "", fmt.Errorf("etcd password file %s has mode %04o: it must not be accessible by group or others (chmod 600 %s)", path, mode, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, passwordFileMax+1))
	if err != nil {
		return "", fmt.Errorf("reading etcd password file %s: %w", path, err)
	}
	if len(data) > passwordFileMax {
		return "", fmt.Errorf("etcd password file %s is larger than %d bytes: not a password file", path, passwordFileMax)
	}
	password := strings.TrimRight(string(data), "\r\n")
	if password == "" {
		return "", fmt.Errorf("etcd password file %s is empty", path)
	}
	return password, nil
}

// DiagnoseTLS says why etcd refuses cfg's TLS connection, or returns nil
// when the TLS handshake with the first TLS endpoint is accepted (or no
// endpoint uses TLS). With TLS 1.3 the server checks the client
// certificate only after the client considers the handshake done, so the
// refusal (a TLS alert: certificate required, unknown certificate
// authority, expired certificate) can reach gRPC after its own write
// failed, and Connect's error may then only say "broken pipe". This dials
// once more and reads the alert. It is meant for Connect's error path.
func DiagnoseTLS(ctx context.Context, cfg Config) error {
	tlsCfg, err := cfg.tls()
	if err != nil {
		return err
	}
	var addr string
	for _, ep := range cfg.Endpoints {
		switch {
		case strings.HasPrefix(ep, "https://"):
			addr = strings.TrimPrefix(ep, "https://")
		case !strings.Contains(ep, "://") && tlsCfg != nil:
			addr = ep
		default:
			continue
		}
		break
	}
	if addr == "" {
		return nil
	}
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	tlsCfg = tlsCfg.Clone()
	if host, _, err := net.SplitHostPort(addr); err == nil && tlsCfg.ServerName == "" {
		tlsCfg.ServerName = host
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := (&tls.Dialer{Config: tlsCfg}).DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil // no answer in time: not a TLS refusal
		}
		return fmt.Errorf("TLS with %s: %w", addr, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	// An accepted client gets etcd's HTTP/2 settings in answer to the
	// preface; a refused one the alert, which stays readable even when the
	// write already failed.
	_, _ = conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	_, err = conn.Read(make([]byte, 1))
	var nerr net.Error
	switch {
	case err == nil, errors.As(err, &nerr) && nerr.Timeout():
		return nil
	case strings.Contains(err.Error(), "remote error: tls:"):
		return fmt.Errorf("etcd at %s refused the TLS connection: %w", addr, err)
	}
	return nil
}
