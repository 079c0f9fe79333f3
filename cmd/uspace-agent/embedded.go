package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/uspace-io/uspace/store"
)

// etcdBinary runs --embedded-etcd's etcd (cmd/uspace-etcd): a process of
// its own, so that this binary, which every container agent execs too, does
// not link the etcd server.
const etcdBinary = "uspace-etcd"

const (
	// Longer than the child's own minute (store/embedetcd), so that a
	// slow start ends in the child's own error rather than this one.
	etcdReadyTimeout = 75 * time.Second
	// etcd's Close takes milliseconds; a child stuck longer is killed.
	etcdStopTimeout = 10 * time.Second
)

// errEtcdExited marks the embedded etcd's exit while the agent still
// needed it: the agent then stops and exits non-zero with it.
var errEtcdExited = errors.New("embedded etcd exited")

// embeddedConfig is what --embedded-etcd runs: the child's data directory
// and its client and raft URLs.
type embeddedConfig struct {
	Dir       string
	ClientURL string
	PeerURL   string
}

// etcdChild is the running embedded etcd.
type etcdChild struct {
	cmd *exec.Cmd
	// lifeline is the write end of the pipe the child reads to its end:
	// the kernel closes it when the agent dies, however it dies, and the
	// child stops. Held here for the child's life.
	lifeline *os.File
	// done is closed once the child has been reaped (cmd.ProcessState).
	done chan struct{}
}

// startEmbedded starts the embedded etcd on the first client endpoint and
// points the agent's own connection at it. What it cannot serve is refused
// before anything starts.
func startEmbedded(ctx context.Context, e *embeddedConfig, etcd *store.Config, log *slog.Logger) (*etcdChild, error) {
	if len(etcd.Endpoints) == 0 {
		return nil, fmt.Errorf("--embedded-etcd: no --etcd-endpoints URL to serve clients on")
	}
	e.ClientURL = etcd.Endpoints[0]
	if !strings.Contains(e.ClientURL, "://") {
		e.ClientURL = "http://" + e.ClientURL
	}
	// Plain http without auth: only this host may reach it.
	u, err := url.Parse(e.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("--embedded-etcd: client URL %q: %w", e.ClientURL, err)
	}
	if ip, err := netip.ParseAddr(u.Hostname()); u.Scheme != "http" || (u.Hostname() != "localhost" && (err != nil || !ip.IsLoopback())) {
		return nil, fmt.Errorf("--embedded-etcd serves plain http on loopback only, not %q: run etcd itself for TLS or other addresses", e.ClientURL)
	}
	if etcd.CACert != "" || etcd.Cert != "" {
		return nil, fmt.Errorf("--embedded-etcd serves plain http on loopback; it takes no --etcd-cacert/--etcd-cert (run etcd itself for TLS)")
	}
	path, err := findEtcdBinary()
	if err != nil {
		return nil, err
	}
	child, endpoints, err := startEtcdChild(ctx, path, *e, log)
	if err != nil {
		return nil, err
	}
	etcd.Endpoints = endpoints
	log.Info("embedded etcd serving", "endpoints", endpoints, "dir", e.Dir, "binary", path, "pid", child.cmd.Process.Pid)
	return child, nil
}

// findEtcdBinary looks for uspace-etcd beside this executable, where make
// build and the packages put it, then on $PATH.
func findEtcdBinary() (string, error) {
	beside := "beside uspace-agent"
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), etcdBinary)
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
		beside = p
	}
	if p, err := exec.LookPath(etcdBinary); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("--embedded-etcd runs etcd as %s, but there is none at %s nor on $PATH: install it beside uspace-agent", etcdBinary, beside)
}

// startEtcdChild runs the embedded etcd and waits until it reports its
// client endpoints on the readiness pipe.
func startEtcdChild(ctx context.Context, path string, e embeddedConfig, log *slog.Logger) (*etcdChild, []string, error) {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("embedded etcd: readiness pipe: %w", err)
	}
	defer readyR.Close()
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return nil, nil, fmt.Errorf("embedded etcd: lifeline pipe: %w", err)
	}
	// ExtraFiles[i] is the child's fd 3+i.
	cmd := exec.Command(path, "--data-dir", e.Dir, "--client-url", e.ClientURL, "--peer-url", e.PeerURL,
		"--ready-fd", "3", "--lifeline-fd", "4")
	cmd.ExtraFiles = []*os.File{readyW, lifeR}
	// Its errors (data directory locked, port in use) are for the user.
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// A terminal's Ctrl-C reaches the agent only, which stops etcd after
	// itself. No Pdeathsig: Linux sends it when the forking *thread* exits,
	// and the agent retires threads it moved into containers' network
	// namespaces; the lifeline is what ties the child to the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	readyW.Close()
	lifeR.Close()
	if err != nil {
		lifeW.Close()
		return nil, nil, fmt.Errorf("embedded etcd: starting %s: %w", path, err)
	}
	c := &etcdChild{cmd: cmd, lifeline: lifeW, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // the exit is in cmd.ProcessState
		close(c.done)
	}()

	line := make(chan string, 1)
	go func() {
		// EOF without a line: the child is exiting, which done reports.
		if s, err := bufio.NewReader(readyR).ReadString('\n'); err == nil {
			line <- s
		}
	}()
	timer := time.NewTimer(etcdReadyTimeout)
	defer timer.Stop()
	select {
	case s := <-line:
		return c, strings.Split(strings.TrimSpace(s), ","), nil
	case <-c.done:
		return nil, nil, fmt.Errorf("embedded etcd (%s, pid %d) exited before it was ready, %v: its own error is above", path, cmd.Process.Pid, cmd.ProcessState)
	case <-timer.C:
		err = fmt.Errorf("embedded etcd (%s, pid %d) not ready after %v", path, cmd.Process.Pid, etcdReadyTimeout)
	case <-ctx.Done():
		err = fmt.Errorf("embedded etcd (%s, pid %d): waiting until ready: %w", path, cmd.Process.Pid, ctx.Err())
	}
	c.Stop(log)
	return nil, nil, err
}

// Supervise returns ctx, ended also when the child exits, and the
// function the agent calls with its own result on its way out: it stops
// the child and, when the child's exit is what stopped the agent, returns
// that as the agent's error.
func (c *etcdChild) Supervise(ctx context.Context, log *slog.Logger) (context.Context, func(error) error) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-c.done:
			err := c.Err()
			log.Error("embedded etcd exited; stopping the agent", "err", err)
			cancel(err)
		case <-ctx.Done():
		}
	}()
	return ctx, func(err error) error {
		if cause := context.Cause(ctx); errors.Is(cause, errEtcdExited) {
			err = cause
		}
		cancel(nil)
		c.Stop(log)
		return err
	}
}

// Err says how the child exited, once done is closed.
func (c *etcdChild) Err() error {
	return fmt.Errorf("%w (%s, pid %d) while the agent ran, %v", errEtcdExited, c.cmd.Path, c.cmd.Process.Pid, c.cmd.ProcessState)
}

// Stop stops the child as a daemon is stopped (SIGTERM: etcd closes and
// keeps its data), kills it if it has not exited within etcdStopTimeout,
// and reaps it.
func (c *etcdChild) Stop(log *slog.Logger) {
	defer c.lifeline.Close()
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM) // it may be exiting already; done says when
	timer := time.NewTimer(etcdStopTimeout)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
		log.Warn("embedded etcd not stopped after SIGTERM; killing it", "pid", c.cmd.Process.Pid, "after", etcdStopTimeout)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	if !c.cmd.ProcessState.Success() {
		log.Warn("embedded etcd stopped with an error", "pid", c.cmd.Process.Pid, "exit", c.cmd.ProcessState.String())
	}
}
