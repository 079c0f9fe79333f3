package vppsim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Control protocol: a unix stream socket carrying one JSON object per line
// in each direction. Requests (ControlRequest):
//
//	{"op":"snapshot"}                                       -> {"ok":true,"state":{...}}
//	{"op":"messages"}                                       -> {"ok":true,"messages":["control_ping_51077d14",...]}
//	{"op":"fail","msg":"memif_create_v2","count":2,"retval":-68}
//	{"op":"latency","msg":"","latency":"200ms"}            ("" = every message; "0" removes)
//	{"op":"clear-faults"}
//	{"op":"drop"}                                           -> {"ok":true,"dropped":N}
//	{"op":"restart"} | {"op":"stop"} | {"op":"start"}
//
// Every answer is a ControlResponse; failures have "ok":false and "error".
const (
	OpSnapshot    = "snapshot"
	OpMessages    = "messages"
	OpFail        = "fail"
	OpLatency     = "latency"
	OpClearFaults = "clear-faults"
	OpDrop        = "drop"
	OpRestart     = "restart"
	OpStop        = "stop"
	OpStart       = "start"
)

// ControlRequest is one control command.
type ControlRequest struct {
	Op      string `json:"op"`
	Msg     string `json:"msg,omitempty"`
	Count   int    `json:"count,omitempty"`
	Retval  int32  `json:"retval,omitempty"`
	Latency string `json:"latency,omitempty"`
}

// ControlResponse answers a ControlRequest.
type ControlResponse struct {
	OK       bool     `json:"ok"`
	Error    string   `json:"error,omitempty"`
	State    *State   `json:"state,omitempty"`
	Messages []string `json:"messages,omitempty"`
	Dropped  int      `json:"dropped,omitempty"`
}

// Exec runs one control command against the simulator.
func (s *Sim) Exec(req ControlRequest) ControlResponse {
	fail := func(err error) ControlResponse { return ControlResponse{Error: err.Error()} }
	switch req.Op {
	case OpSnapshot:
		st := s.Snapshot()
		return ControlResponse{OK: true, State: &st}
	case OpMessages:
		return ControlResponse{OK: true, Messages: s.Messages()}
	case OpFail:
		n := req.Count
		if n == 0 {
			n = 1
		}
		if err := s.FailNext(req.Msg, n, req.Retval); err != nil {
			return fail(err)
		}
	case OpLatency:
		d, err := time.ParseDuration(req.Latency)
		if err != nil {
			return fail(fmt.Errorf("latency: %w", err))
		}
		if err := s.SetLatency(req.Msg, d); err != nil {
			return fail(err)
		}
	case OpClearFaults:
		s.ClearFaults()
	case OpDrop:
		return ControlResponse{OK: true, Dropped: s.DropConnections()}
	case OpRestart:
		if err := s.Restart(); err != nil {
			return fail(err)
		}
	case OpStop:
		if err := s.Stop(); err != nil {
			return fail(err)
		}
	case OpStart:
		if err := s.Start(); err != nil {
			return fail(err)
		}
	default:
		return fail(fmt.Errorf("unknown op %q", req.Op))
	}
	return ControlResponse{OK: true}
}

// ControlServer serves the control protocol on a unix socket.
type ControlServer struct {
	s    *Sim
	ln   *net.UnixListener
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn map[net.Conn]struct{}
}

// ListenControl serves the control protocol on a unix socket at path
// (a stale socket file is replaced).
func (s *Sim) ListenControl(path string) (*ControlServer, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("vppsim: control socket: %w", err)
	}
	cs := &ControlServer{s: s, ln: ln, conn: map[net.Conn]struct{}{}}
	cs.wg.Add(1)
	go cs.acceptLoop()
	return cs, nil
}

// Close stops the control server and removes its socket.
func (cs *ControlServer) Close() error {
	err := cs.ln.Close()
	cs.mu.Lock()
	for c := range cs.conn {
		_ = c.Close()
	}
	cs.mu.Unlock()
	cs.wg.Wait()
	return err
}

func (cs *ControlServer) acceptLoop() {
	defer cs.wg.Done()
	for {
		c, err := cs.ln.Accept()
		if err != nil {
			return
		}
		cs.mu.Lock()
		cs.conn[c] = struct{}{}
		cs.mu.Unlock()
		cs.wg.Add(1)
		go cs.serve(c)
	}
}

func (cs *ControlServer) serve(c net.Conn) {
	defer cs.wg.Done()
	defer func() {
		cs.mu.Lock()
		delete(cs.conn, c)
		cs.mu.Unlock()
		_ = c.Close()
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req ControlRequest
		var resp ControlResponse
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp = ControlResponse{Error: "bad request: " + err.Error()}
		} else {
			resp = cs.s.Exec(req)
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// Control sends one command to the control socket at path and returns the
// answer; a response with OK false is returned as an error too.
func Control(path string, req ControlRequest) (ControlResponse, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return ControlResponse{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return ControlResponse{}, err
	}
	var resp ControlResponse
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		return ControlResponse{}, err
	}
	if !resp.OK {
		return resp, errors.New("vppsim control: " + resp.Error)
	}
	return resp, nil
}
