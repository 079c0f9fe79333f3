package spdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSocket is SPDK's default RPC socket (SPDK_DEFAULT_RPC_ADDR).
const DefaultSocket = "/var/tmp/spdk.sock"

// Client talks to one SPDK RPC socket. It is safe for concurrent use.
type Client struct {
	path        string
	dialTimeout time.Duration
	callTimeout time.Duration
	log         *slog.Logger

	nextID atomic.Uint64
	gen    atomic.Uint64

	dialMu sync.Mutex // one dial at a time
	mu     sync.Mutex // guards cur, closed
	cur    *conn
	closed bool
}

// conn is one connection and its reader.
type conn struct {
	nc   net.Conn
	gen  uint64
	done chan struct{} // closed when the connection is broken

	writeMu sync.Mutex

	mu      sync.Mutex
	pending map[uint64]chan *response
	err     error
}

// Option configures a Client.
type Option func(*Client)

// WithDialTimeout bounds connecting to the socket (default 5s).
func WithDialTimeout(d time.Duration) Option { return func(c *Client) { c.dialTimeout = d } }

// WithCallTimeout bounds a call whose context has no deadline (default 60s,
// rpc.py's default).
func WithCallTimeout(d time.Duration) Option { return func(c *Client) { c.callTimeout = d } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// New returns a client for the RPC socket at path ("" = DefaultSocket). It
// does not connect; the first call does.
func New(path string, opts ...Option) *Client {
	if path == "" {
		path = DefaultSocket
	}
	c := &Client{
		path:        path,
		dialTimeout: 5 * time.Second,
		callTimeout: 60 * time.Second,
		log:         slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// SocketPath is the RPC socket this client uses.
func (c *Client) SocketPath() string { return c.path }

// Generation is the number of connections dialled so far (0 before the
// first successful dial). It increases whenever the client had to connect
// again, which is when SPDK may have restarted and lost its state.
func (c *Client) Generation() uint64 { return c.gen.Load() }

var closedCh = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// Disconnected returns a channel that is closed when the current connection
// breaks (SPDK exited, restarted or closed it) or the client is closed.
// Without a live connection the channel is already closed. A reconciler
// takes it after a successful pass and re-runs the full pass when it fires.
func (c *Client) Disconnected() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return closedCh
	}
	return c.cur.done
}

// Close closes the connection; later calls fail.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	cur := c.cur
	c.cur = nil
	c.mu.Unlock()
	if cur != nil {
		cur.fail(errors.New("client closed"))
	}
	return nil
}

// connect returns the live connection or dials a new one; fresh tells
// whether it was just dialled.
func (c *Client) connect(ctx context.Context) (*conn, bool, error) {
	if cn := c.live(); cn != nil {
		return cn, false, nil
	}
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	if cn := c.live(); cn != nil {
		return cn, false, nil
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, false, errors.New("client closed")
	}
	d := net.Dialer{Timeout: c.dialTimeout}
	nc, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, false, err
	}
	cn := &conn{nc: nc, done: make(chan struct{}), pending: map[uint64]chan *response{}}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		nc.Close()
		return nil, false, errors.New("client closed")
	}
	cn.gen = c.gen.Add(1)
	c.cur = cn
	c.mu.Unlock()
	go c.read(cn)
	c.log.Info("spdk: connected", "socket", c.path, "generation", cn.gen)
	return cn, true, nil
}

func (c *Client) live() *conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return nil
	}
	select {
	case <-c.cur.done:
		c.cur = nil
		return nil
	default:
		return c.cur
	}
}

// fail marks the connection broken (once) and closes it; waiters see done.
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.err = err
	cn.pending = nil
	close(cn.done)
	cn.mu.Unlock()
	cn.nc.Close()
}

func (cn *conn) register(id uint64, ch chan *response) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.err != nil {
		return false
	}
	cn.pending[id] = ch
	return true
}

func (cn *conn) unregister(id uint64) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	delete(cn.pending, id)
}

func (cn *conn) brokenErr() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err
}

// read delivers replies to their callers until the connection breaks.
func (c *Client) read(cn *conn) {
	dec := json.NewDecoder(cn.nc)
	for {
		var resp response
		if err := dec.Decode(&resp); err != nil {
			c.log.Info("spdk: connection lost", "socket", c.path, "generation", cn.gen, "err", err)
			cn.fail(err)
			return
		}
		if resp.JSONRPC != "2.0" {
			cn.fail(fmt.Errorf("%w: reply without jsonrpc 2.0", ErrProtocol))
			return
		}
		cn.mu.Lock()
		var ch chan *response
		var id uint64
		if string(resp.ID) == "null" || len(resp.ID) == 0 {
			// SPDK answers with id null only errors it cannot tie to a
			// request (a parse error, after which it closes). Attribute it
			// when exactly one call is waiting.
			if len(cn.pending) == 1 && resp.Error != nil {
				for k, v := range cn.pending {
					id, ch = k, v
				}
			}
		} else if n, err := strconv.ParseUint(string(resp.ID), 10, 64); err == nil {
			id, ch = n, cn.pending[n]
		}
		if ch != nil {
			delete(cn.pending, id)
		}
		cn.mu.Unlock()
		if ch == nil {
			if string(resp.ID) == "null" || len(resp.ID) == 0 {
				cn.fail(fmt.Errorf("%w: unattributable error reply %s", ErrProtocol, resp.errorText()))
				return
			}
			continue // the caller gave up (context done)
		}
		ch <- &resp
	}
}

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	ID      uint64          `json:"id"`
	Params  json.RawMessage `json:"params,omitempty"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (r *response) errorText() string {
	if r.Error == nil {
		return "(none)"
	}
	return fmt.Sprintf("%d %q", r.Error.Code, r.Error.Message)
}

var longAgo = time.Unix(1, 0)

// Call invokes method with params (nil, or anything that marshals to a JSON
// object; an empty object is left out, as rpc.py does) and decodes the
// result into result (if non-nil). SPDK errors are *RPCError; transport
// errors wrap ErrConnection. A request that could not be written at all
// on a connection the peer had already closed is sent once more on a new
// connection (it never reached SPDK); a request that was written is never
// resent, so its outcome is unknown when the connection breaks before the
// reply (ErrConnection): check the state and converge.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	var rawParams json.RawMessage
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("spdk %s: encode params: %w", method, err)
		}
		if !bytes.Equal(b, []byte("{}")) && !bytes.Equal(b, []byte("null")) {
			rawParams = b
		}
	}
	if _, ok := ctx.Deadline(); !ok && c.callTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.callTimeout)
		defer cancel()
	}
	id := c.nextID.Add(1)
	body, err := json.Marshal(request{JSONRPC: "2.0", Method: method, ID: id, Params: rawParams})
	if err != nil {
		return fmt.Errorf("spdk %s: encode request: %w", method, err)
	}

	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("spdk %s: %w", method, err)
		}
		if attempt > 2 {
			return fmt.Errorf("spdk %s: %w: connection keeps breaking", method, ErrConnection)
		}
		cn, fresh, err := c.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("spdk %s: %w", method, ctx.Err())
			}
			return fmt.Errorf("spdk %s: dial %s: %w: %w", method, c.path, ErrConnection, err)
		}
		ch := make(chan *response, 1)
		if !cn.register(id, ch) {
			continue // broke meanwhile; connect dials a new one
		}
		n, err := cn.write(ctx, body)
		if err != nil {
			cn.unregister(id)
			cn.fail(err)
			if ctx.Err() != nil {
				return fmt.Errorf("spdk %s: %w", method, ctx.Err())
			}
			if n == 0 && !fresh && attempt == 0 {
				c.log.Debug("spdk: stale connection, redialling", "method", method, "err", err)
				continue
			}
			return fmt.Errorf("spdk %s: %w: %w", method, ErrConnection, err)
		}
		var resp *response
		select {
		case resp = <-ch:
		case <-cn.done:
			select {
			case resp = <-ch:
			default:
				return fmt.Errorf("spdk %s: %w: %w", method, ErrConnection, cn.brokenErr())
			}
		case <-ctx.Done():
			cn.unregister(id)
			return fmt.Errorf("spdk %s: %w", method, ctx.Err())
		}
		if resp.Error != nil {
			return &RPCError{Code: resp.Error.Code, Message: resp.Error.Message, Method: method}
		}
		if resp.Result == nil {
			return fmt.Errorf("spdk %s: %w: reply without result or error", method, ErrProtocol)
		}
		if result != nil {
			if err := json.Unmarshal(resp.Result, result); err != nil {
				return fmt.Errorf("spdk %s: decode result %s: %w: %w", method, resp.Result, ErrProtocol, err)
			}
		}
		return nil
	}
}

// write sends one request, interruptible by ctx. An interrupted write
// leaves the connection unusable (a partial request may be on the wire).
func (cn *conn) write(ctx context.Context, body []byte) (int, error) {
	cn.writeMu.Lock()
	defer cn.writeMu.Unlock()
	if err := cn.brokenErr(); err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { _ = cn.nc.SetWriteDeadline(longAgo) })
	n, err := cn.nc.Write(body)
	if !stop() && err == nil {
		// The context fired during the write; the deadline may be poisoned.
		err = ctx.Err()
	}
	return n, err
}
