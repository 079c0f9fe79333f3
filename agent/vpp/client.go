package vpp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/binapi/vxlan"
	"go.fd.io/govpp/core"

	"github.com/uspace-io/uspace/store"
)

// DefaultSocket is VPP's default binary API socket.
const DefaultSocket = socketclient.DefaultSocketName

// Config configures a Client. The zero value is usable.
type Config struct {
	// Socket is VPP's API socket (default /run/vpp/api.sock).
	Socket string
	// ClientName identifies the client in VPP (default "uspace").
	ClientName string
	// RequestTimeout bounds an operation whose context has no deadline
	// (default 10s).
	RequestTimeout time.Duration
	// HealthInterval is how often a connected client pings VPP (default
	// 1s); HealthTimeout bounds one ping (default 2s). A ping that fails
	// outright (the socket is gone) ends the connection at once;
	// HealthFailures timeouts in a row (default 3) do too.
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	HealthFailures int
	// Backoff spaces connection attempts (default: store.NewBackoff from
	// 200ms up to 10s); it starts over once a connection lasted a minute.
	Backoff *backoff.ExponentialBackOff
	// PipelineWindow is how many requests Pipeline keeps in flight
	// (default 256).
	PipelineWindow int
	// Logger receives the driver's logs (default slog.Default()).
	Logger *slog.Logger
	// InterfaceEvents subscribes every connection to VPP's interface
	// events (want_interface_events), delivered through InterfaceEvents
	// and TakeInterfaceEvents: how an agent learns, without polling, that
	// someone else deleted or downed an interface it made.
	InterfaceEvents bool
}

// EventType says what happened to the connection.
type EventType int

const (
	// EventConnected: connected to a compatible VPP. Re-list and reconcile
	// everything.
	EventConnected EventType = iota + 1
	// EventDisconnected: the connection is gone; operations fail with
	// ErrNotConnected until the next EventConnected.
	EventDisconnected
	// EventIncompatible: connected, but VPP's API does not match; Err is an
	// *IncompatibleError.
	EventIncompatible
)

func (t EventType) String() string {
	switch t {
	case EventConnected:
		return "Connected"
	case EventDisconnected:
		return "Disconnected"
	case EventIncompatible:
		return "Incompatible"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is a connection state change.
type Event struct {
	Type EventType
	Time time.Time
	// Generation counts connections; it changes with every EventConnected.
	Generation uint64
	// Version and PID describe the VPP connected to.
	Version Version
	PID     uint32
	// Restarted: VPP's pid differs from the one of the previous
	// connection, so VPP restarted and lost its dataplane state. (Every
	// EventConnected must trigger a full reconcile anyway, as events may
	// have been missed while disconnected.)
	Restarted bool
	Err       error
}

// Version is what VPP's show_version reports.
type Version struct {
	Program        string
	Version        string
	BuildDate      string
	BuildDirectory string
}

// session is one established, checked connection.
type session struct {
	conn       *core.Connection
	generation uint64
	version    Version
	pid        uint32
	err        error // *IncompatibleError when VPP does not match

	memclnt memclnt.RPCService
	vpe     vpe.RPCService
	memif   memif.RPCService
	vhost   vhost_user.RPCService
	l2      l2.RPCService
	ifc     interfaces.RPCService
	ip      ip.RPCService
	vxlan   vxlan.RPCService
	afp     af_packet.RPCService

	// features holds, per optional Feature, nil when VPP has it or why not.
	features map[Feature]error
}

// backoffReset is how long a connection must have lasted for the next
// attempt after its loss to start from the shortest delay again.
const backoffReset = time.Minute

// Client is a VPP connection supervised for its whole life. Methods are safe
// for concurrent use.
type Client struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	cur        *session
	lastErr    error
	generation uint64
	lastPID    uint32
	ready      chan struct{} // closed while connected to a compatible VPP

	events chan Event
	evMu   sync.Mutex

	ifev ifEvents // guarded by mu
}

// Dial starts a client. It returns at once; the connection is established in
// the background (see WaitConnected and Events).
func Dial(cfg Config) *Client {
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.ClientName == "" {
		cfg.ClientName = "uspace"
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = time.Second
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 2 * time.Second
	}
	if cfg.HealthFailures <= 0 {
		cfg.HealthFailures = 3
	}
	if cfg.Backoff == nil {
		cfg.Backoff = store.NewBackoff(200*time.Millisecond, 10*time.Second)
	}
	if cfg.PipelineWindow <= 0 {
		cfg.PipelineWindow = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "vpp", "socket", cfg.Socket),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		ready:  make(chan struct{}),
		events: make(chan Event, 32),
		ifev:   ifEvents{pending: map[uint32]InterfaceEvent{}, ready: make(chan struct{}, 1)},
	}
	go c.supervise()
	return c
}

// Close disconnects from VPP and stops reconnecting. Events() is closed.
func (c *Client) Close() error {
	c.cancel()
	<-c.done
	return nil
}

// Events delivers connection state changes. The channel is buffered; when
// the consumer falls behind the oldest events are dropped, so the newest
// state is always delivered. It is closed by Close.
func (c *Client) Events() <-chan Event { return c.events }

// Connected reports whether a compatible VPP is connected.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil && c.cur.err == nil
}

// ConnectedVersion returns what show_version said when the current
// connection was made, without asking VPP again (a call would queue behind
// whatever the connection is busy with).
func (c *Client) ConnectedVersion() (Version, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.err != nil {
		return Version{}, false
	}
	return c.cur.version, true
}

// Generation returns the number of the current connection (0 before the
// first); it changes with every EventConnected.
func (c *Client) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

// StartGrace is how long an agent starting beside its VPP waits for the
// first connection before its first reconciles: the two usually start
// together, and without it every interface would report VPP missing and
// then ready a moment later.
const StartGrace = 5 * time.Second

// WaitConnected blocks until a compatible VPP is connected or ctx ends.
func (c *Client) WaitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		ready, cur, lastErr := c.ready, c.cur, c.lastErr
		c.mu.Unlock()
		if cur != nil && cur.err == nil {
			return nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			if cur != nil && cur.err != nil {
				return cur.err
			}
			if lastErr != nil {
				return fmt.Errorf("%w: %w (last error: %v)", ErrNotConnected, ctx.Err(), lastErr)
			}
			return fmt.Errorf("%w: %w", ErrNotConnected, ctx.Err())
		case <-c.done:
			return fmt.Errorf("%w: client closed", ErrNotConnected)
		}
	}
}

func (c *Client) emit(ev Event) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	for {
		select {
		case c.events <- ev:
			return
		default:
		}
		select { // full: drop the oldest
		case old := <-c.events:
			c.log.Warn("vpp event dropped, consumer too slow", "event", old.Type)
		default:
		}
	}
}

// supervise runs connection cycles until Close, spaced by the backoff.
//
// Every cycle uses a fresh core.Connection from core.Connect and ends when
// that connection is lost; the driver does not let GoVPP reconnect a
// connection in place (core.AsyncConnect): in GoVPP v0.12.0 a reconnect
// rewrites the connection's message-id maps without the lock its readers
// take, a data race (and a possible concurrent map access) with any
// goroutine still receiving on that connection.
func (c *Client) supervise() {
	defer close(c.done)
	defer func() {
		c.evMu.Lock()
		close(c.events)
		c.evMu.Unlock()
	}()
	b := c.cfg.Backoff
	b.Reset()
	for c.ctx.Err() == nil {
		start := time.Now()
		c.runCycle(c.ctx)
		if time.Since(start) >= backoffReset {
			b.Reset()
		}
		select {
		case <-c.ctx.Done():
		case <-time.After(b.NextBackOff()):
		}
	}
	c.setDisconnected(errors.New("client closed"), false)
}

// runCycle connects once and watches the connection until it is lost or
// the client closes.
func (c *Client) runCycle(ctx context.Context) {
	// What watches this connection (interface events) ends with it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	adapter := socketclient.NewVppClient(c.cfg.Socket)
	adapter.SetClientName(c.cfg.ClientName)
	conn, err := core.Connect(adapter)
	if err != nil {
		c.log.Debug("connecting to VPP failed", "err", err)
		c.noteErr(err)
		return
	}
	defer conn.Disconnect()
	s := c.onConnected(ctx, conn)
	if s == nil {
		return
	}
	lost := c.watch(ctx, s)
	if ctx.Err() != nil {
		return
	}
	c.log.Warn("VPP connection lost", "err", lost)
	c.setDisconnected(lost, true)
}

// watch pings VPP until the connection is lost (returning why) or ctx
// ends.
func (c *Client) watch(ctx context.Context, s *session) error {
	tick := time.NewTicker(c.cfg.HealthInterval)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, c.cfg.HealthTimeout)
		_, err := s.memclnt.ControlPing(pctx, &memclnt.ControlPing{})
		cancel()
		switch {
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			failures++
			if failures >= c.cfg.HealthFailures {
				return fmt.Errorf("VPP not responding: %d health checks timed out", failures)
			}
			c.log.Warn("VPP health check timed out", "failures", failures)
		default:
			return err
		}
	}
}

func (c *Client) noteErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// setDisconnected drops the current session; notify emits
// EventDisconnected if there was one.
func (c *Client) setDisconnected(err error, notify bool) {
	c.mu.Lock()
	had := c.cur != nil
	gen := c.generation
	c.cur = nil
	c.lastErr = err
	select {
	case <-c.ready:
		c.ready = make(chan struct{})
	default:
	}
	c.mu.Unlock()
	if had && notify {
		c.emit(Event{Type: EventDisconnected, Time: time.Now(), Generation: gen, Err: err})
	}
}

func newSession(conn *core.Connection) *session {
	return &session{
		conn:    conn,
		memclnt: memclnt.NewServiceClient(conn),
		vpe:     vpe.NewServiceClient(conn),
		memif:   memif.NewServiceClient(conn),
		vhost:   vhost_user.NewServiceClient(conn),
		l2:      l2.NewServiceClient(conn),
		ifc:     interfaces.NewServiceClient(conn),
		ip:      ip.NewServiceClient(conn),
		vxlan:   vxlan.NewServiceClient(conn),
		afp:     af_packet.NewServiceClient(conn),
	}
}

// onConnected checks the new connection (compatibility, version, pid) and
// publishes it. It returns nil when the connection is unusable.
func (c *Client) onConnected(ctx context.Context, conn *core.Connection) *session {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	s := newSession(conn)

	compatErr := checkCompatibility(conn)
	s.version = Version{Version: "unknown"}
	if v, err := s.vpe.ShowVersion(rctx, &vpe.ShowVersion{}); err == nil {
		s.version = Version{Program: v.Program, Version: v.Version, BuildDate: v.BuildDate, BuildDirectory: v.BuildDirectory}
	} else {
		c.log.Warn("show_version failed", "err", err)
	}
	ping, err := s.memclnt.ControlPing(rctx, &memclnt.ControlPing{})
	if err != nil {
		c.log.Warn("control_ping after connect failed", "err", err)
		c.noteErr(err)
		return nil
	}
	s.pid = ping.VpePID
	s.features = checkFeatures(conn, s.version.Version)

	var incompat *IncompatibleError
	if compatErr != nil {
		var ce *api.CompatibilityError
		if errors.As(compatErr, &ce) {
			incompat = &IncompatibleError{Version: s.version.Version, Incompatible: ce.IncompatibleMessages}
			s.err = incompat
		} else {
			s.err = opErr("check compatibility", "", nil, compatErr)
		}
	}

	if s.err == nil && c.cfg.InterfaceEvents {
		// Subscribed before the connection is published: the resync its
		// EventConnected starts misses no change made after its dumps.
		if err := c.watchInterfaces(ctx, s); err != nil {
			c.log.Warn("subscribing to interface events failed", "err", err)
			c.noteErr(err)
			return nil
		}
	}

	c.mu.Lock()
	c.generation++
	s.generation = c.generation
	restarted := c.lastPID != 0 && c.lastPID != s.pid
	c.lastPID = s.pid
	c.cur = s
	c.lastErr = s.err
	if s.err == nil {
		select {
		case <-c.ready:
		default:
			close(c.ready)
		}
	}
	c.mu.Unlock()

	if s.err != nil {
		c.log.Error("VPP is incompatible with this driver", "version", s.version.Version, "err", s.err)
		c.emit(Event{Type: EventIncompatible, Time: time.Now(), Generation: s.generation, Version: s.version, PID: s.pid, Err: s.err})
		return s
	}
	c.log.Info("connected to VPP", "version", s.version.Version, "pid", s.pid, "generation", s.generation, "restarted", restarted)
	c.emit(Event{Type: EventConnected, Time: time.Now(), Generation: s.generation, Version: s.version, PID: s.pid, Restarted: restarted})
	return s
}

// session returns the usable session or why there is none.
func (c *Client) session() (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		if c.lastErr != nil {
			return nil, fmt.Errorf("%w (%v)", ErrNotConnected, c.lastErr)
		}
		return nil, ErrNotConnected
	}
	if c.cur.err != nil {
		return nil, c.cur.err
	}
	return c.cur, nil
}

// reqCtx applies the default timeout to contexts without a deadline.
func (c *Client) reqCtx(ctx context.Context, scale int) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	if scale < 1 {
		scale = 1
	}
	return context.WithTimeout(ctx, c.cfg.RequestTimeout*time.Duration(scale))
}

// begin starts an operation: a usable session and a bounded context.
func (c *Client) begin(ctx context.Context, op, object string) (*session, context.Context, context.CancelFunc, error) {
	s, err := c.sessionFor(op, object)
	if err != nil {
		return nil, nil, nil, err
	}
	rctx, cancel := c.reqCtx(ctx, 1)
	return s, rctx, cancel, nil
}

// read runs call, a read for op on object needing feature f (0: none),
// with a session and the request context, and wraps its error for op; a
// call that returns ErrNotFound itself reports op's object as not found.
func read[T any](c *Client, ctx context.Context, f Feature, op, object string, call func(context.Context, *session) (T, error)) (T, error) {
	var zero T
	var s *session
	var err error
	if f == 0 {
		s, err = c.sessionFor(op, object)
	} else {
		s, err = c.sessionWith(f, op, object)
	}
	if err != nil {
		return zero, err
	}
	rctx, cancel := c.reqCtx(ctx, 1)
	defer cancel()
	v, err := call(rctx, s)
	switch {
	case err == ErrNotFound:
		return zero, opErr(op, object, ErrNotFound, nil)
	case err != nil:
		return zero, opErr(op, object, nil, err)
	}
	return v, nil
}

// found is err, or ErrNotFound when a lookup found nothing.
func found(ok bool, err error) error {
	if err == nil && !ok {
		return ErrNotFound
	}
	return err
}

// sessionFor is session with the error wrapped for op on object.
func (c *Client) sessionFor(op, object string) (*session, error) {
	s, err := c.session()
	if err != nil {
		kind := ErrNotConnected
		var ie *IncompatibleError
		if errors.As(err, &ie) {
			kind = nil
		}
		return nil, opErr(op, object, kind, err)
	}
	return s, nil
}

// ShowVersion asks VPP for its version.
func (c *Client) ShowVersion(ctx context.Context) (Version, error) {
	s, rctx, cancel, err := c.begin(ctx, "show version", "")
	if err != nil {
		return Version{}, err
	}
	defer cancel()
	v, err := s.vpe.ShowVersion(rctx, &vpe.ShowVersion{})
	if err != nil {
		return Version{}, opErr("show version", "", nil, err)
	}
	return Version{Program: v.Program, Version: v.Version, BuildDate: v.BuildDate, BuildDirectory: v.BuildDirectory}, nil
}

// Ping sends a control_ping and returns VPP's pid.
func (c *Client) Ping(ctx context.Context) (uint32, error) {
	s, rctx, cancel, err := c.begin(ctx, "control ping", "")
	if err != nil {
		return 0, err
	}
	defer cancel()
	r, err := s.memclnt.ControlPing(rctx, &memclnt.ControlPing{})
	if err != nil {
		return 0, opErr("control ping", "", nil, err)
	}
	return r.VpePID, nil
}
