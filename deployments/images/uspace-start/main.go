package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/spf13/pflag"
)

const (
	defaultVPPCmd     = "/usr/bin/vpp -c /etc/vpp/startup.conf"
	defaultVPPSocket  = "/run/vpp/api.sock"
	defaultSPDKSocket = "/var/tmp/spdk.sock"
)

type options struct {
	vppCmd, vppSocket   string
	spdkCmd, spdkSocket string
	mkdirs              []string
	wait, stopTimeout   time.Duration
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "uspace-start")
	var o options
	fs := pflag.NewFlagSet("uspace-start", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.StringVar(&o.vppCmd, "vpp", envOr("USPACE_VPP_CMD", defaultVPPCmd), `VPP command line, started first (env USPACE_VPP_CMD; "none": start no VPP)`)
	fs.StringVar(&o.vppSocket, "vpp-socket", envOr("USPACE_VPP_SOCKET", defaultVPPSocket), "VPP binary API socket to wait for (env USPACE_VPP_SOCKET, which the agent reads too)")
	fs.StringVar(&o.spdkCmd, "spdk", envOr("USPACE_SPDK_CMD", "none"), `SPDK command line, started after VPP (env USPACE_SPDK_CMD; "none": start no SPDK)`)
	fs.StringVar(&o.spdkSocket, "spdk-socket", envOr("USPACE_SPDK_SOCKET", defaultSPDKSocket), "SPDK JSON-RPC socket to wait for (env USPACE_SPDK_SOCKET, which the agent reads too)")
	fs.StringSliceVar(&o.mkdirs, "mkdir", nil, "directories to create before anything starts (repeatable)")
	fs.DurationVar(&o.wait, "wait", 60*time.Second, "how long to wait for each dataplane socket")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", 10*time.Second, "how long each process gets after SIGTERM before SIGKILL")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: uspace-start [flags] [--] COMMAND [ARG...]\n\n"+
			"Starts VPP (and SPDK), waits for their sockets, then runs COMMAND (the\n"+
			"uspace agent); when any of them ends, stops the others and exits.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		os.Exit(2)
	}
	os.Exit(run(log, o, fs.Args()))
}

// proc is one supervised child.
type proc struct {
	name string
	cmd  *exec.Cmd
	done bool
	code int
}

type supervisor struct {
	log   *slog.Logger
	procs []*proc // in start order
	sigs  chan os.Signal
	stop  bool // a stop signal arrived
	grace time.Duration
}

func run(log *slog.Logger, o options, main []string) int {
	s := &supervisor{log: log, sigs: make(chan os.Signal, 16), grace: o.stopTimeout}
	signal.Notify(s.sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT)

	for _, d := range o.mkdirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			log.Error("mkdir", "dir", d, "err", err)
			return 1
		}
	}
	for _, dp := range []struct{ name, cmd, socket string }{
		{"vpp", o.vppCmd, o.vppSocket},
		{"spdk", o.spdkCmd, o.spdkSocket},
	} {
		args := strings.Fields(dp.cmd)
		if len(args) == 0 || dp.cmd == "none" {
			continue
		}
		// VPP (19.08+) refuses to start when its socket directory is missing.
		if err := os.MkdirAll(filepath.Dir(dp.socket), 0o755); err != nil {
			log.Error("mkdir", "dir", filepath.Dir(dp.socket), "err", err)
			return 1
		}
		if err := s.start(dp.name, args); err != nil {
			log.Error("start", "process", dp.name, "err", err)
			return s.shutdown(1)
		}
		if !s.waitSocket(dp.name, dp.socket, o.wait) {
			return s.shutdown(1)
		}
	}
	if err := s.start("agent", main); err != nil {
		log.Error("start", "process", "agent", "err", err)
		return s.shutdown(1)
	}
	for {
		sig := <-s.sigs
		if sig != syscall.SIGCHLD {
			s.log.Info("stopping", "signal", sig.String())
			s.stop = true
			return s.shutdown(0)
		}
		if p := s.reap(); p != nil {
			code := p.code
			if code == 0 && p.name != "agent" {
				code = 1 // a dataplane that ends is a failure
			}
			s.log.Warn("process ended, stopping the container", "process", p.name, "code", p.code)
			return s.shutdown(code)
		}
	}
}

func (s *supervisor) start(name string, args []string) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	s.log.Info("started", "process", name, "pid", cmd.Process.Pid, "command", strings.Join(args, " "))
	s.procs = append(s.procs, &proc{name: name, cmd: cmd})
	return nil
}

// reap collects every exited child (as PID 1 that includes orphans) and
// returns the first supervised one that ended, if any.
func (s *supervisor) reap() *proc {
	var ended *proc
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return ended
		}
		for _, p := range s.procs {
			if p.cmd.Process.Pid == pid && !p.done {
				p.done = true
				p.code = ws.ExitStatus()
				if ws.Signaled() {
					p.code = 128 + int(ws.Signal())
				}
				if ended == nil {
					ended = p
				}
			}
		}
	}
}

// waitSocket waits for a dataplane's socket, failing early when the
// dataplane exits or a stop signal arrives. It watches the socket's
// directory (inotify) rather than looking again and again.
func (s *supervisor) waitSocket(name, path string, timeout time.Duration) bool {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Error("cannot watch for the socket", "process", name, "socket", path, "err", err)
		return false
	}
	defer w.Close()
	dir := filepath.Dir(path)
	// The dataplane would create it too; it must exist to be watched.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.log.Error("cannot create the socket's directory", "process", name, "dir", dir, "err", err)
		return false
	}
	if err := w.Add(dir); err != nil {
		s.log.Error("cannot watch the socket's directory", "process", name, "dir", dir, "err", err)
		return false
	}
	deadline := time.After(timeout)
	for {
		// Checked after the watch is in place, and after every change in
		// the directory, so a socket made at any moment is seen.
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			s.log.Info("ready", "process", name, "socket", path)
			return true
		}
		select {
		case sig := <-s.sigs:
			if sig != syscall.SIGCHLD {
				s.stop = true
				return false
			}
			if p := s.reap(); p != nil {
				s.log.Error("process ended before its socket appeared", "process", p.name, "code", p.code, "socket", path)
				return false
			}
		case <-deadline:
			s.log.Error("socket did not appear", "process", name, "socket", path, "waited", timeout)
			return false
		case err := <-w.Errors:
			s.log.Error("watching for the socket failed", "process", name, "socket", path, "err", err)
			return false
		case <-w.Events:
		}
	}
}

// shutdown stops the running children in reverse start order (the agent
// before the dataplanes it talks to) and returns code.
func (s *supervisor) shutdown(code int) int {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		if p.done {
			continue
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		deadline := time.After(s.grace)
		for !p.done {
			select {
			case <-s.sigs:
				s.reap()
			case <-time.After(100 * time.Millisecond):
				s.reap()
			case <-deadline:
				s.log.Warn("killing", "process", p.name)
				_ = p.cmd.Process.Kill()
				deadline = nil
			}
		}
		s.log.Info("stopped", "process", p.name, "code", p.code)
		if p.name == "agent" && code == 0 && !s.stop {
			code = p.code
		}
	}
	return code
}
