package spdksim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// ControlRequest is one command on the control socket: one JSON object per
// line, answered by one ControlResponse line. Commands:
//
//	{"cmd":"fail","method":"bdev_malloc_create","count":2,"code":-32603,"message":"boom"}
//	{"cmd":"drop_next","method":"vhost_delete_controller","count":1,"after_apply":true}
//	{"cmd":"latency","method":"","ms":200}          ("" = every method; ms 0 removes)
//	{"cmd":"drop_connections"}                      result: number of connections closed
//	{"cmd":"restart","remove_sockets":false,"downtime_ms":0}
//	{"cmd":"clear_faults"}
//	{"cmd":"snapshot"}                              result: Snapshot
//
// From a shell: echo '{"cmd":"snapshot"}' | socat - UNIX-CONNECT:<control socket>
type ControlRequest struct {
	Cmd           string `json:"cmd"`
	Method        string `json:"method,omitempty"`
	Count         int    `json:"count,omitempty"`
	Code          int    `json:"code,omitempty"`
	Message       string `json:"message,omitempty"`
	AfterApply    bool   `json:"after_apply,omitempty"`
	Ms            int64  `json:"ms,omitempty"`
	RemoveSockets bool   `json:"remove_sockets,omitempty"`
	DowntimeMs    int64  `json:"downtime_ms,omitempty"`
}

// ControlResponse answers a ControlRequest.
type ControlResponse struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Control executes one control command against s.
func (s *Sim) Control(req ControlRequest) (any, error) {
	switch req.Cmd {
	case "fail":
		if req.Code == 0 {
			return nil, errors.New("fail: code required")
		}
		return nil, s.Inject(Fault{Method: req.Method, Count: req.Count, Code: req.Code, Message: req.Message})
	case "drop_next":
		return nil, s.Inject(Fault{Method: req.Method, Count: req.Count, Drop: true, AfterApply: req.AfterApply})
	case "latency":
		s.SetLatency(req.Method, time.Duration(req.Ms)*time.Millisecond)
		return nil, nil
	case "drop_connections":
		return s.DropConnections(), nil
	case "restart":
		return nil, s.Restart(RestartOptions{
			RemoveSockets: req.RemoveSockets,
			Downtime:      time.Duration(req.DowntimeMs) * time.Millisecond,
		})
	case "clear_faults":
		s.ClearFaults()
		return nil, nil
	case "snapshot":
		return s.Snapshot(), nil
	}
	return nil, fmt.Errorf("unknown command %q", req.Cmd)
}

// ControlServer serves control commands on a unix socket.
type ControlServer struct {
	ln    *net.UnixListener
	sim   *Sim
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// ServeControl listens on path (a stale socket there is replaced) and
// serves control commands until Close.
func (s *Sim) ServeControl(path string) (*ControlServer, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("spdksim: control socket: %w", err)
	}
	cs := &ControlServer{ln: ln, sim: s, conns: map[net.Conn]struct{}{}}
	cs.wg.Add(1)
	go cs.accept()
	return cs, nil
}

func (cs *ControlServer) accept() {
	defer cs.wg.Done()
	for {
		c, err := cs.ln.Accept()
		if err != nil {
			return
		}
		cs.mu.Lock()
		cs.conns[c] = struct{}{}
		cs.wg.Add(1)
		cs.mu.Unlock()
		go cs.serve(c)
	}
}

func (cs *ControlServer) serve(c net.Conn) {
	defer cs.wg.Done()
	defer func() {
		cs.mu.Lock()
		delete(cs.conns, c)
		cs.mu.Unlock()
		c.Close()
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var resp ControlResponse
		var req ControlRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else if res, err := cs.sim.Control(req); err != nil {
			resp.Error = err.Error()
		} else {
			resp.OK = true
			if res != nil {
				resp.Result, _ = json.Marshal(res)
			}
		}
		b, _ := json.Marshal(resp)
		if _, err := c.Write(append(b, '\n')); err != nil {
			return
		}
	}
}

// Close stops the control server and removes its socket.
func (cs *ControlServer) Close() error {
	err := cs.ln.Close()
	cs.mu.Lock()
	for c := range cs.conns {
		c.Close()
	}
	cs.mu.Unlock()
	cs.wg.Wait()
	return err
}

// ControlCall sends one command to a control socket (of a uspace-spdksim
// process) and returns its result.
func ControlCall(ctx context.Context, socket string, req ControlRequest) (json.RawMessage, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	var resp ControlResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, err
	}
	if !resp.OK {
		return nil, fmt.Errorf("spdksim control %s: %s", req.Cmd, resp.Error)
	}
	return resp.Result, nil
}
