package etcdconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// TLSConfig is the client side of cfg's TLS: nil when no TLS file is
// configured (https:// endpoints then still get TLS, verified against the
// system roots). At least TLS 1.2, as etcd's own client; the client
// certificate is read again at every handshake, so a renewed certificate
// is picked up by a long-running process.
func (c Config) TLSConfig() (*tls.Config, error) {
	if c.CACert == "" && c.Cert == "" && c.Key == "" {
		return nil, nil
	}
	if (c.Cert == "") != (c.Key == "") {
		return nil, fmt.Errorf("etcd TLS: client certificate (%q) and key (%q) must be given together", c.Cert, c.Key)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("etcd TLS: reading CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd TLS: CA file %s holds no PEM certificate", c.CACert)
		}
	}
	if c.Cert != "" {
		load := func() (*tls.Certificate, error) {
			cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
			if err != nil {
				return nil, fmt.Errorf("etcd TLS: loading certificate %q and key %q: %w", c.Cert, c.Key, err)
			}
			return &cert, nil
		}
		// Loaded once now so that a missing or broken file fails here,
		// naming it, rather than inside a handshake.
		if _, err := load(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return load() }
	}
	return cfg, nil
}

// DiagnoseTLS says why etcd refuses cfg's TLS connection, or returns nil
// when the TLS handshake with the first TLS endpoint is accepted (or no
// endpoint uses TLS). With TLS 1.3 the server checks the client
// certificate only after the client considers the handshake done, so the
// refusal (a TLS alert: certificate required, unknown certificate
// authority, expired certificate) can reach the client after its own
// write failed, and the client's error may then only say "broken pipe".
// This dials once more and reads the alert. It is meant for error paths.
func DiagnoseTLS(ctx context.Context, cfg Config) error {
	tlsCfg, err := cfg.TLSConfig()
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
