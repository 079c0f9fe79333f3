package realdp

import (
	"bytes"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/spawn"
)

// proc is one run at a time of a dataplane process, its output kept for
// the log of a failed test.
type proc struct {
	name string
	argv []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) start() error {
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = p, p
	fmt.Fprintf(p, "=== start %v\n", p.argv)
	if err := spawn.Start(cmd); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return nil
}

// exited is closed when the current run ends.
func (p *proc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// pid of the current run, 0 when none.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// signal sends sig to the current run and waits up to wait for its end.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// kill is a crash: SIGKILL, then wait for the end.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	if !p.signal(syscall.SIGKILL, 30*time.Second) {
		t.Fatalf("%s did not die on SIGKILL", p.name)
	}
}

// waitFor polls ready (a readiness probe of a process under test: there is
// no event to wait on) until it succeeds, the process exits or a minute
// passes.
func (p *proc) waitFor(t testing.TB, what string, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case <-p.exited():
			t.Fatalf("%s exited before %s: %v\n%s", p.name, what, err, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within a minute: %v\n%s", p.name, what, err, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
