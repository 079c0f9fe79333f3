package spdksim

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Options configure a simulator.
type Options struct {
	// RPCSocket is the unix socket path to serve JSON-RPC on (spdk_tgt -r).
	// Required.
	RPCSocket string
	// VhostDir is where controller sockets are created (spdk_tgt -S).
	// Default: the current working directory, as spdk_tgt.
	VhostDir string
	// CoreMask is the application core mask (spdk_tgt -m); controller
	// cpumasks must be a non-empty subset of it. Default 0x1.
	CoreMask uint64
	// Commit is the git sha1 reported by spdk_get_version. Default none:
	// like the prebuilt v24.09 (not built from a git checkout), the
	// version is then "SPDK v24.09" without a commit field.
	Commit string
	// MemLimitBytes bounds the total size of malloc bdevs (0:
	// DefaultMemLimitBytes; math.MaxUint64: unlimited); beyond it
	// bdev_malloc_create fails with -12 "Cannot allocate memory", as SPDK
	// does when its memory runs out.
	MemLimitBytes uint64
	// Logger receives one line per state change (Info) and per call (Debug).
	// Default: discard.
	Logger *slog.Logger
	// OnStateChange, if set, is called (outside any lock) after every call
	// that changed state and after Restart.
	OnStateChange func()
}

// DefaultMemLimitBytes is what malloc bdevs get in `spdk_tgt --no-huge -s
// 2048` (the set-up of ../shared/dataplanes), measured on v24.09: sixteen
// 64 MiB bdevs and one more of 16 MiB fit, a seventeenth of 64 MiB does not.
const DefaultMemLimitBytes = 1056 << 20

// Version of SPDK the simulator reports.
const (
	VersionMajor = 24
	VersionMinor = 9
	VersionPatch = 0
)

// Sim is a running simulator. All methods are safe for concurrent use.
type Sim struct {
	opts     Options
	log      *slog.Logger
	vhostDir string

	mu          sync.Mutex
	ln          *net.UnixListener
	conns       map[*rpcConn]struct{}
	closed      bool
	boot        int
	version     uint64        // bumped on every state change
	changed     chan struct{} // closed and replaced on every state change
	bdevs       []*bdev
	ctrls       []*controller
	mallocCount int // unnamed bdevs attempted: the next Malloc<N>
	memLimit    uint64
	scsiDevIDs  map[int]bool
	faults      []*Fault
	latency     map[string]time.Duration
	calls       map[string]int

	wg sync.WaitGroup
}

// Start creates a simulator and starts serving on opts.RPCSocket. A stale
// socket file there is replaced; a live one (another server answers) is an
// error, as spdk_tgt refuses to share its RPC socket.
func Start(opts Options) (*Sim, error) {
	if opts.RPCSocket == "" {
		return nil, errors.New("spdksim: RPCSocket is required")
	}
	if opts.CoreMask == 0 {
		opts.CoreMask = 0x1
	}
	dir := opts.VhostDir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("spdksim: vhost dir: %w", err)
		}
		dir = wd
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("spdksim: vhost dir: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("spdksim: vhost dir %s is not a directory", dir)
	}
	if opts.MemLimitBytes == 0 {
		opts.MemLimitBytes = DefaultMemLimitBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{
		opts:       opts,
		log:        log,
		vhostDir:   dir,
		conns:      map[*rpcConn]struct{}{},
		changed:    make(chan struct{}),
		scsiDevIDs: map[int]bool{},
		memLimit:   opts.MemLimitBytes,
		latency:    map[string]time.Duration{},
		calls:      map[string]int{},
	}
	ln, err := listenRPC(opts.RPCSocket)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.ln = ln
	s.wg.Add(1)
	s.mu.Unlock()
	go s.acceptLoop(ln)
	log.Info("spdksim listening", "rpc_socket", opts.RPCSocket, "vhost_dir", dir)
	return s, nil
}

func listenRPC(path string) (*net.UnixListener, error) {
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("spdksim: RPC Unix domain socket path %s in use", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("spdksim: remove stale %s: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("spdksim: listen %s: %w", path, err)
	}
	return ln, nil
}

// Addr is the RPC socket path.
func (s *Sim) Addr() string { return s.opts.RPCSocket }

// VhostDir is the absolute directory controller sockets are created in.
func (s *Sim) VhostDir() string { return s.vhostDir }

// Boot counts restarts: 0 for the first instance, +1 per Restart.
func (s *Sim) Boot() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.boot
}

// Calls returns how many requests named method were received (all boots,
// including failed and injected-fault ones).
func (s *Sim) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Close is a clean shutdown: stop serving, close every connection, remove
// the RPC socket and every controller socket. It waits for all goroutines.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ln := s.ln
	s.ln = nil
	conns := s.takeConnsLocked()
	for _, c := range s.ctrls {
		c.closeSocket(true)
	}
	s.bumpLocked()
	s.mu.Unlock()
	if ln != nil {
		ln.SetUnlinkOnClose(false)
		ln.Close()
		os.Remove(s.opts.RPCSocket)
	}
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	return nil
}

func (s *Sim) takeConnsLocked() []*rpcConn {
	out := make([]*rpcConn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	s.conns = map[*rpcConn]struct{}{}
	return out
}

// bumpLocked records a state change and wakes waiters.
func (s *Sim) bumpLocked() {
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Sim) stateVersion() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// RestartOptions tune Restart.
type RestartOptions struct {
	// RemoveSockets removes the controller socket files (a clean stop). By
	// default they stay behind as stale sockets nobody listens on, which is
	// what a crashed spdk_tgt leaves.
	RemoveSockets bool
	// Downtime keeps the RPC socket absent this long before the new
	// instance listens (clients get ENOENT/ECONNREFUSED meanwhile).
	Downtime time.Duration
}

// Restart simulates spdk_tgt crashing and starting again: every connection
// is closed, all bdevs and controllers are lost, the malloc name counter
// starts over, and the RPC socket is recreated. Injected faults and latency
// (test controls, not SPDK state) are kept. Without Downtime the new RPC
// socket replaces the old one atomically (bound beside it, then renamed
// over it), so the path never disappears: once Restart returns, or Boot
// shows the new boot, clients can connect.
func (s *Sim) Restart(opts RestartOptions) error {
	path := s.opts.RPCSocket
	var newLn *net.UnixListener
	var tmp string
	if opts.Downtime <= 0 {
		tmp = filepath.Join(filepath.Dir(path), fmt.Sprintf(".spdksim-%d.sock", time.Now().UnixNano()%1e9))
		if ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"}); err == nil {
			newLn = ln
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if newLn != nil {
			newLn.Close()
		}
		return errors.New("spdksim: closed")
	}
	oldLn := s.ln
	conns := s.takeConnsLocked()
	s.forgetStateLocked(opts.RemoveSockets)
	boot := s.boot
	if newLn != nil {
		if err := os.Rename(tmp, path); err != nil {
			newLn.Close()
			newLn = nil
		} else {
			// The listener's own path is tmp; never unlink by that name.
			newLn.SetUnlinkOnClose(false)
		}
	}
	s.ln = newLn
	if newLn != nil {
		s.wg.Add(1)
	}
	s.bumpLocked()
	s.mu.Unlock()

	if oldLn != nil {
		// Unlink by hand: a renamed-in listener only knows its temporary
		// name, and with a replacement in place the path is not ours.
		oldLn.SetUnlinkOnClose(false)
		oldLn.Close()
		if newLn == nil {
			os.Remove(path)
		}
	}
	for _, c := range conns {
		c.close()
	}
	s.log.Info("spdksim restarted", "boot", boot, "stale_sockets", !opts.RemoveSockets)
	if newLn != nil {
		go s.acceptLoop(newLn)
		s.stateChanged()
		return nil
	}
	return s.relisten(path, opts.Downtime)
}

// forgetStateLocked is what a crash loses: every bdev and controller
// (their sockets removed or left stale), the malloc name counter; it
// starts the next boot.
func (s *Sim) forgetStateLocked(removeSockets bool) {
	for _, c := range s.ctrls {
		c.closeSocket(removeSockets)
	}
	s.bdevs = nil
	s.ctrls = nil
	s.mallocCount = 0
	s.scsiDevIDs = map[int]bool{}
	s.boot++
}

// relisten makes the RPC socket again after downtime, when Restart could
// not swap a new one in atomically.
func (s *Sim) relisten(path string, downtime time.Duration) error {
	if downtime > 0 {
		time.Sleep(downtime)
	}
	ln, err := listenRPC(path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return errors.New("spdksim: closed")
	}
	s.ln = ln
	s.wg.Add(1)
	s.mu.Unlock()
	go s.acceptLoop(ln)
	s.stateChanged()
	return nil
}

func (s *Sim) stateChanged() {
	if s.opts.OnStateChange != nil {
		s.opts.OnStateChange()
	}
}

// DropConnections closes every open RPC connection (the server keeps
// listening) and returns how many there were.
func (s *Sim) DropConnections() int {
	s.mu.Lock()
	conns := s.takeConnsLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	return len(conns)
}

// Fault is an injected misbehaviour for the next Count calls of Method.
type Fault struct {
	// Method the fault applies to; "" matches every method.
	Method string `json:"method,omitempty"`
	// Count is how many calls it applies to (0 means 1).
	Count int `json:"count,omitempty"`
	// Code and Message: answer with this JSON-RPC error instead of
	// executing the call. Message defaults to "Injected failure".
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Drop closes the connection without answering. With AfterApply the
	// call is executed first (its effect stays, the reply is lost);
	// otherwise it is not executed.
	Drop       bool `json:"drop,omitempty"`
	AfterApply bool `json:"after_apply,omitempty"`
}

// Inject queues a fault. Faults are consumed in the order injected.
func (s *Sim) Inject(f Fault) error {
	if f.Count <= 0 {
		f.Count = 1
	}
	if !f.Drop && f.Code == 0 {
		return errors.New("spdksim: fault needs a non-zero code or drop")
	}
	if f.Message == "" && !f.Drop {
		f.Message = "Injected failure"
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
	return nil
}

// FailNext makes the next n calls of method fail with code and message.
func (s *Sim) FailNext(method string, n, code int, message string) {
	if code == 0 {
		code = -32603
	}
	_ = s.Inject(Fault{Method: method, Count: n, Code: code, Message: message})
}

// DropNext makes the next n calls of method close the connection without a
// reply; with afterApply the call takes effect first.
func (s *Sim) DropNext(method string, n int, afterApply bool) {
	_ = s.Inject(Fault{Method: method, Count: n, Drop: true, AfterApply: afterApply})
}

// SetLatency delays every call of method ("" = every method) by d before it
// is executed; d == 0 removes the delay.
func (s *Sim) SetLatency(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.latency, method)
		return
	}
	s.latency[method] = d
}

// ClearFaults removes every pending fault and latency.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	s.latency = map[string]time.Duration{}
}

// takeFault returns (and consumes one use of) the first fault for method.
func (s *Sim) takeFault(method string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Method != "" && f.Method != method {
			continue
		}
		cp := *f
		f.Count--
		if f.Count <= 0 {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		return &cp
	}
	return nil
}

func (s *Sim) latencyFor(method string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.latency[method]; ok {
		return d
	}
	return s.latency[""]
}
