package realdp

import (
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/spawn"
)

// waitFor polls ready (a readiness probe of a process under test: there is
// no event to wait on) until it succeeds, p exits or a minute passes.
func waitFor(t testing.TB, p *spawn.Proc, what string, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case <-p.Exited():
			t.Fatalf("%s exited before %s: %v\n%s", p.Name, what, err, p.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within a minute: %v\n%s", p.Name, what, err, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
