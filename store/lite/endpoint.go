package lite

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path"
	"strings"
	"time"
)

// dialer reaches etcd's endpoints, written as etcd's own client takes
// them: http:// and https:// URLs; host:port, with TLS when a TLS
// configuration is given; and unix sockets (unix:path, unix://path,
// unix:///abs-path, and unixs:// for TLS over one), which requests address
// by a placeholder host that dial maps back to the socket.
type dialer struct {
	net  net.Dialer
	tls  *tls.Config
	unix map[string]string // placeholder host -> socket path
}

// endpointURLs are the base URLs of eps, in their order.
func (d *dialer) endpointURLs(eps []string) ([]string, error) {
	var urls []string
	for i, ep := range eps {
		scheme, rest, ok := strings.Cut(ep, ":")
		switch {
		case ok && (scheme == "unix" || scheme == "unixs"):
			sock := strings.TrimPrefix(rest, "//")
			host := fmt.Sprintf("etcd-unix-%d.invalid", i)
			d.unix[host] = sock
			if scheme == "unixs" || d.tls != nil {
				urls = append(urls, "https://"+host)
			} else {
				urls = append(urls, "http://"+host)
			}
		case strings.HasPrefix(ep, "http://"), strings.HasPrefix(ep, "https://"):
			urls = append(urls, strings.TrimSuffix(ep, "/"))
		case strings.Contains(ep, "://"):
			return nil, fmt.Errorf("etcd endpoint %q: only http://, https://, unix:// and unixs:// are supported", ep)
		case d.tls != nil:
			urls = append(urls, "https://"+ep)
		default:
			urls = append(urls, "http://"+ep)
		}
	}
	return urls, nil
}

// dial connects to addr, or to the unix socket its placeholder host
// stands for.
func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if sock, ok := d.unix[host]; err == nil && ok {
		return d.net.DialContext(ctx, "unix", sock)
	}
	return d.net.DialContext(ctx, network, addr)
}

// dialTLS is dial with a TLS handshake offering HTTP/2, verifying the
// server as the host of addr, or for a unix socket as etcd's client
// does, by the socket's file name.
func (d *dialer) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	raw, err := d.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if d.tls != nil {
		cfg = d.tls.Clone()
	}
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		cfg.ServerName = host
		if sock, ok := d.unix[host]; ok {
			cfg.ServerName = path.Base(sock)
		}
	}
	cfg.NextProtos = []string{"h2"}
	conn := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, d.net.Timeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

// newDialer dials with timeout, TLS handshake included.
func newDialer(tlsCfg *tls.Config, timeout time.Duration) *dialer {
	return &dialer{net: net.Dialer{Timeout: timeout}, tls: tlsCfg, unix: map[string]string{}}
}
