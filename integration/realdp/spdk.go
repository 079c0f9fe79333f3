package realdp

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/spawn"
)

// SPDKOptions shape one spdk_tgt.
type SPDKOptions struct {
	// VhostDir is where vhost controllers' sockets go (-S); made when
	// missing. "" puts them in the instance's own directory.
	VhostDir string
	// RPCSocket is the JSON-RPC socket (-r); "" puts it in the instance's
	// own directory.
	RPCSocket string
}

// SPDK is one real spdk_tgt.
type SPDK struct {
	Dir       string
	RPCSocket string
	VhostDir  string
	proc      *spawn.Proc
	id        atomic.Int64
}

// StartSPDK starts spdk_tgt and waits until it answers spdk_get_version.
// The test's cleanup kills it.
func StartSPDK(t testing.TB, opts SPDKOptions) *SPDK {
	t.Helper()
	NeedSPDK(t)
	dir, err := os.MkdirTemp("", "uspdk")
	if err != nil {
		t.Fatal(err)
	}
	s := &SPDK{Dir: dir, RPCSocket: opts.RPCSocket, VhostDir: opts.VhostDir}
	if s.RPCSocket == "" {
		s.RPCSocket = filepath.Join(dir, "rpc.sock")
	}
	if s.VhostDir == "" {
		s.VhostDir = filepath.Join(dir, "vhost")
	}
	if err := os.MkdirAll(s.VhostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// -s 2048 fits 16 malloc bdevs of 64 MiB (1024 only one). spdk_tgt's
	// reactor polls a core flat out, idle or not (its interrupt mode
	// leaves vhost RPCs unanswered): niced, three of them beside VPPs,
	// agents and etcd on a shared 2-core machine take what the others
	// leave instead of starving them.
	s.proc = &spawn.Proc{Name: "spdk_tgt", Args: []string{"nice", "-n", "10", spdkBin, "--no-huge", "-s", "2048", "-m", "0x1",
		"--disable-cpumask-locks", "-S", s.VhostDir, "-r", s.RPCSocket}}
	t.Cleanup(func() {
		s.Kill(t)
		if t.Failed() {
			t.Logf("--- output of spdk_tgt ---\n%s", s.proc.Output())
		}
		os.Remove(s.RPCSocket) // a killed spdk_tgt leaves it
		os.RemoveAll(dir)
	})
	s.Start(t)
	return s
}

// Start starts spdk_tgt (again, after Kill): empty, on the same sockets.
func (s *SPDK) Start(t testing.TB) {
	t.Helper()
	os.Remove(s.RPCSocket)
	if err := s.proc.Start(); err != nil {
		t.Fatalf("start spdk_tgt: %v", err)
	}
	waitFor(t, s.proc, "RPC answer", func() error {
		_, err := s.Call("spdk_get_version", nil)
		return err
	})
}

// Kill crashes spdk_tgt (SIGKILL), waits for its end and removes what a
// killed spdk_tgt leaves behind: its trace file in /dev/shm and DPDK's
// runtime directory.
func (s *SPDK) Kill(t testing.TB) {
	t.Helper()
	pid := s.proc.Pid()
	s.proc.Kill()
	if pid != 0 {
		os.Remove(fmt.Sprintf("/dev/shm/spdk_tgt_trace.pid%d", pid))
		os.RemoveAll(fmt.Sprintf("/var/run/dpdk/spdk_pid%d", pid))
	}
}

// Pause stops spdk_tgt (SIGSTOP): its sockets stay open and nothing
// answers until Resume.
func (s *SPDK) Pause(t testing.TB) { s.signal(t, syscall.SIGSTOP) }

// Resume continues a paused spdk_tgt (SIGCONT).
func (s *SPDK) Resume(t testing.TB) { s.signal(t, syscall.SIGCONT) }

func (s *SPDK) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(s.proc.Pid(), sig); err != nil {
		t.Fatalf("signal spdk_tgt %v: %v", sig, err)
	}
}

// Pid is the process id of the running spdk_tgt, 0 when it is not running.
func (s *SPDK) Pid() int { return s.proc.Pid() }

// RPCError is a JSON-RPC error answer.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("SPDK RPC error %d: %s", e.Code, e.Message) }

// Call sends one JSON-RPC 2.0 request on a connection of its own and
// returns the result, or an *RPCError.
func (s *SPDK) Call(method string, params any) (json.RawMessage, error) {
	c, err := net.DialTimeout("unix", s.RPCSocket, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	req := map[string]any{"jsonrpc": "2.0", "id": s.id.Add(1), "method": method}
	if params != nil {
		req["params"] = params
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, fmt.Errorf("send %s: %w", method, err)
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  *RPCError       `json:"error"`
	}
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("read answer to %s: %w", method, err)
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	return resp.Result, nil
}

// RPC is Call that fails the test on any error.
func (s *SPDK) RPC(t testing.TB, method string, params any) json.RawMessage {
	t.Helper()
	r, err := s.Call(method, params)
	if err != nil {
		t.Fatalf("SPDK %s: %v", method, err)
	}
	return r
}

// RPCPy runs SPDK's own rpc.py against this instance, as a user would.
func (s *SPDK) RPCPy(t testing.TB, args ...string) string {
	t.Helper()
	py := filepath.Join(filepath.Dir(spdkBin), "rpc.py")
	if _, err := os.Stat(py); err != nil {
		py = filepath.Join(filepath.Dir(spdkBin), "..", "scripts", "rpc.py")
	}
	out, err := exec.Command("python3", append([]string{py, "-s", s.RPCSocket}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("rpc.py %v: %v: %s", args, err, out)
	}
	return string(out)
}

// Version is spdk_get_version's version string, e.g. "SPDK v24.09".
func (s *SPDK) Version(t testing.TB) string {
	t.Helper()
	var v struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(s.RPC(t, "spdk_get_version", nil), &v); err != nil {
		t.Fatal(err)
	}
	return v.Version
}
