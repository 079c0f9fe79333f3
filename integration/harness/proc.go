package harness

import (
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/spawn"
)

// Proc is a child process of a test (integration/spawn).
type Proc = spawn.Proc

// StartProc runs path with args; the test's cleanup stops it and, when the
// test failed, logs its output.
func StartProc(t testing.TB, name, path string, args []string, env ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Args: append([]string{path}, args...), Env: env}
	if err := p.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		p.Stop(5 * time.Second)
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, p.Output())
		}
	})
	return p
}

// ExitedNonZero waits for p to end and returns its output; the test fails
// if it does not end within that time or ends with status 0.
func ExitedNonZero(t testing.TB, p *Proc, within time.Duration) string {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(within):
		t.Fatalf("%s still running after %v:\n%s", p.Name, within, p.Output())
	}
	if err := p.Stop(time.Second); err == nil {
		t.Fatalf("%s exited with status 0:\n%s", p.Name, p.Output())
	}
	return p.Output()
}
