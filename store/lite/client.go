package lite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/uspace-io/uspace/store/etcdconf"
)

// Client speaks etcd's gRPC API over HTTP/2: TLS with ALPN for https://
// endpoints, prior-knowledge cleartext HTTP/2 for http:// ones (unix
// sockets alike). It is safe for concurrent use.
type Client struct {
	cfg  etcdconf.Config
	urls []string
	// next is the endpoint tried first: the last one that answered.
	next     atomic.Int32
	tr       *http.Transport
	password string
	mu       sync.Mutex
	token    string
}

// Health checks of an open connection: a member that went silent (black
// holed) fails a watch instead of stalling it; the interval stays above
// etcd's default --grpc-keepalive-min-time (5 s).
const (
	pingAfter   = 10 * time.Second
	pingTimeout = 5 * time.Second
)

// Connect sets up a client for cfg. Without a user it sends nothing: an
// unreachable etcd shows in the first request. With one it logs in
// (etcd's Authenticate), so a wrong password or an unreachable etcd fails
// here.
func Connect(ctx context.Context, cfg etcdconf.Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = []string{etcdconf.DefaultEndpoint}
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = etcdconf.DefaultDialTimeout
	}
	password, err := cfg.ResolvePassword()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	d := newDialer(tlsCfg, cfg.DialTimeout)
	c := &Client{cfg: cfg, password: password}
	if c.urls, err = d.endpointURLs(cfg.Endpoints); err != nil {
		return nil, err
	}
	// Members share the load: each process starts at a random one.
	c.next.Store(int32(rand.IntN(len(c.urls))))
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	c.tr = &http.Transport{
		DialContext:        d.dial,
		DialTLSContext:     d.dialTLS,
		ForceAttemptHTTP2:  true,
		DisableCompression: true,
		Protocols:          &protocols,
		HTTP2:              &http.HTTP2Config{SendPingTimeout: pingAfter, PingTimeout: pingTimeout},
	}
	if cfg.Username != "" {
		if err := c.login(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Close ends the client's connections; running calls fail.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// login asks etcd for a token (Authenticate: name 1, password 2; the
// answer's token is field 2). etcd's answers never echo the password.
func (c *Client) login(ctx context.Context) error {
	where := strings.Join(c.cfg.Endpoints, ",")
	msg, err := c.roundTrips(ctx, "Auth/Authenticate", pb(nil).str(1, c.cfg.Username).str(2, c.password), false)
	var e *Error
	switch {
	case errors.As(err, &e) && e.Message == msgAuthNotEnabled:
		// As etcd's own client: credentials for an etcd without auth
		// are no error, requests simply carry no token.
		return nil
	case e != nil:
		return fmt.Errorf("connecting to etcd at %s as %q: %w", where, c.cfg.Username, err)
	case err != nil:
		return err
	}
	var token string
	err = fields(msg, func(f int, _ uint64, b []byte) error {
		if f == 2 {
			token = string(b)
		}
		return nil
	})
	if err != nil || token == "" {
		return fmt.Errorf("connecting to etcd at %s as %q: no token in etcd's answer (%v)", where, c.cfg.Username, err)
	}
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
	return nil
}

// call sends one unary request and returns etcd's answer. A token etcd no
// longer knows (expired, or its auth store changed) is renewed once. When
// again is set, a request etcd could not serve for now (no leader, the
// leader changed, a timeout: gRPC's Unavailable, or DeadlineExceeded
// before ctx's deadline) or whose connection was lost with it in flight
// (the member stopped) is sent again after a pause until ctx ends, to the
// next endpoint: the member that could not serve it may be cut off from
// the others, or gone, and they serve it (client/v3's balancer picks
// another too). resent then says an earlier send's outcome was unknown.
func (c *Client) call(ctx context.Context, method string, req []byte, again bool) (msg []byte, resent bool, err error) {
	b := newBackoff()
	for {
		msg, err = c.roundTrips(ctx, method, req, true)
		if c.cfg.Username != "" && staleToken(err) {
			if err := c.login(ctx); err != nil {
				return nil, resent, err
			}
			msg, err = c.roundTrips(ctx, method, req, true)
		}
		if err == nil || !again || !unserved(err) {
			return msg, resent, err
		}
		if n := c.next.Load(); len(c.urls) > 1 {
			c.next.CompareAndSwap(n, (n+1)%int32(len(c.urls)))
		}
		select {
		case <-ctx.Done():
			return nil, resent, fmt.Errorf("%w (after %v)", ctx.Err(), err)
		case <-time.After(b.NextBackOff()):
		}
		resent = true
	}
}

// unserved says whether a request's error leaves it for another send:
// etcd could not serve it for now, or the connection was lost with the
// request in flight.
func unserved(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Code == codeUnavailable || e.Code == codeDeadlineExceeded
	}
	var te *transportError
	return errors.As(err, &te) && te.sent
}

// roundTrips sends the request to the endpoint that answered last, and to
// the next ones while the request could not even be sent.
func (c *Client) roundTrips(ctx context.Context, method string, req []byte, withToken bool) ([]byte, error) {
	var msg []byte
	err := c.onEndpoints(ctx, func(url string) (err error) {
		msg, err = c.roundTrip(ctx, url, method, req, withToken)
		return err
	})
	return msg, err
}

// The pauses before a read etcd could not serve is sent again and before
// a broken watch resumes: a new leader or a restarted member is picked up
// at once, a long outage does not become a busy loop.
const (
	retryInitial = 50 * time.Millisecond
	retryMax     = time.Second
)

func newBackoff() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(backoff.WithInitialInterval(retryInitial), backoff.WithMaxInterval(retryMax), backoff.WithMaxElapsedTime(0))
}

// onEndpoints runs f on the endpoint that answered last, then on the next
// ones while f's request could not even be sent (refused, no route, TLS
// refused); the endpoint that answers, even with an error, is the next
// call's first.
func (c *Client) onEndpoints(ctx context.Context, f func(url string) error) error {
	var errs []error
	first := int(c.next.Load())
	for i := range c.urls {
		n := (first + i) % len(c.urls)
		err := f(c.urls[n])
		if err == nil {
			c.next.Store(int32(n))
			return nil
		}
		err = c.refusedHandshake(ctx, c.urls[n], err)
		if !NotSent(err) {
			c.next.Store(int32(n))
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
	}
	return c.unreachable(ctx, errors.Join(errs...))
}

func (c *Client) newRequest(ctx context.Context, url, method string, body io.Reader, withToken bool) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/etcdserverpb."+method, body)
	if err != nil {
		return nil, err
	}
	req.Header = http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}}
	if dl, ok := ctx.Deadline(); ok {
		// etcd gives up when the caller has: milliseconds, at most 8 digits.
		req.Header.Set("Grpc-Timeout", fmt.Sprintf("%dm", min(max(time.Until(dl).Milliseconds(), 1), 99999999)))
	}
	if withToken {
		c.mu.Lock()
		if c.token != "" {
			req.Header.Set("Token", c.token)
		}
		c.mu.Unlock()
	}
	return req, nil
}

func (c *Client) roundTrip(ctx context.Context, url, method string, msg []byte, withToken bool) ([]byte, error) {
	req, err := c.newRequest(ctx, url, method, bytes.NewReader(frame(msg)), withToken)
	if err != nil {
		return nil, err
	}
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return nil, transportErr(url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, frameHeader+maxMessage+1))
	if err != nil {
		return nil, transportErr(url, err)
	}
	if err := grpcStatus(resp); err != nil {
		return nil, err
	}
	out, rest, err := unframe(body)
	if err != nil {
		return nil, fmt.Errorf("etcd at %s answered %s: %w", url, method, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("etcd at %s answered %s with %d bytes after its message", url, method, len(rest))
	}
	return out, nil
}

// unframe splits one gRPC message off b.
func unframe(b []byte) (msg, rest []byte, err error) {
	if len(b) < frameHeader {
		return nil, nil, fmt.Errorf("%d bytes, not a gRPC message", len(b))
	}
	if b[0] != 0 {
		return nil, nil, errors.New("compressed gRPC message (never asked for)")
	}
	n := int(uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4]))
	if n > maxMessage || len(b)-frameHeader < n {
		return nil, nil, fmt.Errorf("gRPC message of %d bytes, %d received", n, len(b)-frameHeader)
	}
	return b[frameHeader : frameHeader+n], b[frameHeader+n:], nil
}

// refusedHandshake tells etcd's refusal of a TLS handshake from a lost
// connection. With TLS 1.3 the client considers the handshake done before
// the server checked its certificate, so the server's alert may come
// after the client's write already failed ("connection reset by peer");
// one more handshake reads the alert. A refused handshake served nothing:
// the error is then that refusal, not sent.
func (c *Client) refusedHandshake(ctx context.Context, url string, err error) error {
	var te *transportError
	if !errors.As(err, &te) || !te.sent || !strings.HasPrefix(url, "https://") {
		return err
	}
	cfg := c.cfg
	cfg.Endpoints = []string{url}
	if why := etcdconf.DiagnoseTLS(context.WithoutCancel(ctx), cfg); why != nil && strings.Contains(why.Error(), "remote error: tls:") {
		return &transportError{err: fmt.Errorf("%w (after %v)", why, err)}
	}
	return err
}

// unreachable says why no endpoint could be reached: a TLS refusal
// (named by the server's alert) or no answer at all.
func (c *Client) unreachable(ctx context.Context, err error) error {
	if tlsErr := etcdconf.DiagnoseTLS(context.WithoutCancel(ctx), c.cfg); tlsErr != nil &&
		(strings.Contains(tlsErr.Error(), "tls:") || strings.Contains(tlsErr.Error(), "x509:")) {
		return &transportError{err: fmt.Errorf("connecting to etcd at %s: %w", strings.Join(c.cfg.Endpoints, ","), tlsErr)}
	}
	return &transportError{err: fmt.Errorf("etcd at %s unreachable within %v: %w", strings.Join(c.cfg.Endpoints, ","), c.cfg.DialTimeout, err)}
}
