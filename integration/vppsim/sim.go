package vppsim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultSocket is where VPP listens for binary API clients by default.
const DefaultSocket = "/run/vpp/api.sock"

// DefaultRuntimeDir is VPP's run-time directory: relative memif socket
// filenames and the default memif socket (id 0, memif.sock) live there.
const DefaultRuntimeDir = "/run/vpp"

// DefaultVersion is what show_version reports unless Options.Version is set.
// It matches the VPP release GoVPP v0.12.0's binapi was generated from.
const DefaultVersion = "25.02-release"

// Options configure a simulator.
type Options struct {
	// Socket is the API socket path (default DefaultSocket). Its directory is
	// created if missing, a stale file at the path is replaced.
	Socket string
	// RuntimeDir is VPP's run-time directory (default DefaultRuntimeDir).
	RuntimeDir string
	// Version is reported by show_version (default DefaultVersion).
	Version string
	// Exclude lists messages ("name" or "name_crc") left out of the message
	// table, to make the simulator look like an incompatible VPP.
	Exclude []string
	// Logger receives the simulator's logs (default: discard).
	Logger *slog.Logger
}

// Sim is a running VPP binary-API simulator. All methods are safe for
// concurrent use.
type Sim struct {
	opts     Options
	log      *slog.Logger
	handlers []*handler
	exclude  map[string]bool

	// lifeMu serialises Start/Stop/Restart/Close.
	lifeMu sync.Mutex

	mu         sync.Mutex // guards everything below
	running    bool
	closed     bool
	generation int
	pid        uint32
	table      *msgTable
	ln         *net.UnixListener
	clients    map[*client]struct{}
	nextClient uint32
	st         *world
	faults     map[string]*fault // by message name
	latency    map[string]time.Duration
	counts     map[string]uint64
	wg         sync.WaitGroup // accept loop + client goroutines
}

type fault struct {
	remaining int
	retval    int32
}

// New creates a simulator without listening yet; see Start.
func New(opts Options) (*Sim, error) {
	if opts.Socket == "" {
		opts.Socket = DefaultSocket
	}
	if opts.RuntimeDir == "" {
		opts.RuntimeDir = DefaultRuntimeDir
	}
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Sim{
		opts:     opts,
		log:      opts.Logger,
		handlers: allHandlers(),
		exclude:  map[string]bool{},
		clients:  map[*client]struct{}{},
		faults:   map[string]*fault{},
		latency:  map[string]time.Duration{},
		counts:   map[string]uint64{},
	}
	for _, e := range opts.Exclude {
		s.exclude[e] = true
	}
	return s, nil
}

// Start creates a simulator and starts listening.
func Start(opts Options) (*Sim, error) {
	s, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Socket returns the API socket path.
func (s *Sim) Socket() string { return s.opts.Socket }

// RuntimeDir returns the simulated VPP run-time directory.
func (s *Sim) RuntimeDir() string { return s.opts.RuntimeDir }

// Start listens on the API socket with a fresh, empty dataplane state (a new
// "VPP process": new vpe_pid, new message ids). Starting a running simulator
// is an error.
func (s *Sim) Start() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	return s.start()
}

func (s *Sim) start() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("vppsim: closed")
	}
	if s.running {
		s.mu.Unlock()
		return errors.New("vppsim: already running")
	}
	s.mu.Unlock()

	if err := os.MkdirAll(filepath.Dir(s.opts.Socket), 0o755); err != nil {
		return fmt.Errorf("vppsim: create API socket directory: %w", err)
	}
	if err := os.MkdirAll(s.opts.RuntimeDir, 0o755); err != nil {
		return fmt.Errorf("vppsim: create runtime directory: %w", err)
	}
	// Like VPP, replace a stale socket left by a previous instance.
	if fi, err := os.Lstat(s.opts.Socket); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("vppsim: %s exists and is not a socket", s.opts.Socket)
		}
		_ = os.Remove(s.opts.Socket)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.opts.Socket, Net: "unix"})
	if err != nil {
		return fmt.Errorf("vppsim: listen on %s: %w", s.opts.Socket, err)
	}

	s.mu.Lock()
	s.generation++
	s.pid = uint32(os.Getpid()) | uint32(s.generation-1)<<22
	s.table = newMsgTable(s.handlers, s.generation, s.exclude)
	s.st = newWorld(s.opts.RuntimeDir, s.generation)
	s.ln = ln
	s.running = true
	gen := s.generation
	s.wg.Add(1)
	s.mu.Unlock()

	s.log.Info("vppsim listening", "socket", s.opts.Socket, "generation", gen, "messages", len(s.table.sorted))
	go s.acceptLoop(ln)
	return nil
}

// Stop behaves like a VPP crash: the API socket is closed and removed, every
// client connection is closed, the dataplane state is discarded. Socket files
// of memif masters and vhost-user servers stay behind as dead sockets, as a
// crashed VPP leaves them. Stopping a stopped simulator is a no-op.
func (s *Sim) Stop() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.stop(false)
	return nil
}

func (s *Sim) stop(clean bool) {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	s.running = false
	ln := s.ln
	s.ln = nil
	clients := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	st := s.st
	s.mu.Unlock()

	_ = ln.Close() // unlinks the API socket
	for _, c := range clients {
		_ = c.conn.Close()
	}
	s.wg.Wait()

	s.mu.Lock()
	st.shutdown(clean)
	s.st = newWorld(s.opts.RuntimeDir, s.generation) // empty until Start
	s.mu.Unlock()
	s.log.Info("vppsim stopped", "socket", s.opts.Socket, "clean", clean)
}

// Restart is Stop followed by Start: clients see VPP restart with an empty
// dataplane.
func (s *Sim) Restart() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.stop(false)
	return s.start()
}

// Close shuts the simulator down cleanly: like Stop, but socket files the
// simulated dataplane created are removed too. A closed simulator cannot be
// started again.
func (s *Sim) Close() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.stop(true)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// DropConnections closes every client connection but keeps the dataplane
// state (an API socket hiccup, not a restart). It returns how many
// connections were closed.
func (s *Sim) DropConnections() int {
	s.mu.Lock()
	clients := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	for _, c := range clients {
		_ = c.conn.Close()
	}
	return len(clients)
}

// FailNext makes the next n requests of message name (e.g.
// "memif_create_v2", with or without "_<crc>") fail with retval, without
// touching the state. The message must be one that has a reply with a
// retval (dumps have none). n <= 0 clears the fault.
func (s *Sim) FailNext(name string, n int, retval int32) error {
	h := s.lookupHandler(name)
	if h == nil {
		return fmt.Errorf("vppsim: unknown message %q", name)
	}
	if !hasRetval(h.reply) {
		return fmt.Errorf("vppsim: message %q has no reply with a retval", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := h.req.GetMessageName()
	if n <= 0 {
		delete(s.faults, key)
		return nil
	}
	s.faults[key] = &fault{remaining: n, retval: retval}
	return nil
}

// SetLatency delays the handling of every request of message name by d
// (name "" = every message, including control_ping). d <= 0 removes it.
func (s *Sim) SetLatency(name string, d time.Duration) error {
	key := ""
	if name != "" {
		h := s.lookupHandler(name)
		if h == nil {
			return fmt.Errorf("vppsim: unknown message %q", name)
		}
		key = h.req.GetMessageName()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.latency, key)
	} else {
		s.latency[key] = d
	}
	return nil
}

// ClearFaults removes every injected failure and latency.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string]*fault{}
	s.latency = map[string]time.Duration{}
}

// Messages returns the current message table ("name_crc" entries).
func (s *Sim) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.table == nil {
		return nil
	}
	out := make([]string, 0, len(s.table.sorted))
	for _, e := range s.table.sorted {
		out = append(out, e.Name)
	}
	return out
}

// MessageID returns the id the current message table gives "name_crc".
func (s *Sim) MessageID(nameCRC string) (uint16, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.table == nil {
		return 0, false
	}
	id, ok := s.table.idOf[nameCRC]
	return id, ok
}

// MessageCount returns how many requests of message name (without CRC) the
// simulator has handled since it was created.
func (s *Sim) MessageCount(name string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[name]
}

func (s *Sim) lookupHandler(name string) *handler {
	for _, h := range s.handlers {
		if h.req.GetMessageName() == name || msgKey(h.req) == name {
			return h
		}
	}
	return nil
}
