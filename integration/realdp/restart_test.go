package realdp_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/schema"
)

// restartDuringPing pings dst from c's VPP, 10 a second, for as long as
// restart takes (it starts 1 s in) and 2 s more, and returns how many
// pings went unanswered.
func restartDuringPing(t *testing.T, c *container, dst string, restart func() error) (lost int, stats string) {
	t.Helper()
	const window = 12 * time.Second
	errc := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		start := time.Now()
		err := restart()
		if took := time.Since(start); err == nil && took > window-3*time.Second {
			err = fmt.Errorf("the restart took %v, outlasting the ping", took)
		}
		errc <- err
	}()
	pings := int(window / (100 * time.Millisecond))
	out := c.ctr.RealVPP.CLI(t, "ping "+dst+" repeat "+strconv.Itoa(pings)+" interval 0.1")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	sent, received, ok := realdp.PingCounts(out)
	if !ok {
		t.Fatalf("ping %s: no statistics:\n%s", dst, out)
	}
	if sent != pings {
		t.Fatalf("ping %s: %d sent of %d:\n%s", dst, sent, pings, out)
	}
	return sent - received, fmt.Sprintf("%d sent, %d received", sent, received)
}

// A host agent restart leaves cross-host traffic alone, on real VPPs: a
// container on host 1 pings one on host 2 through the VXLAN tunnels while
// host 1's agent is stopped (SIGTERM) and started again, then killed
// (SIGKILL) and started again. The restarted agent resumes its
// predecessor's lease, so host 2 keeps its tunnel (the same sw_if_index)
// and at most one ping goes unanswered.
func TestAgentRestartKeepsCrossHostTraffic(t *testing.T) {
	ws, cs, _ := spanTwoHosts(t)
	h1 := ws[0].host
	t.Logf("host 1 -> host 2: %s", ping(t, cs[0].ctr.RealVPP, cs[1].ip))
	peerStatus := harness.WaitStatus[schema.InterfaceStatus](t, ws[0].etcd, tunnelStatusKey(ws[1], ws[0]), 0, harness.Ready[schema.InterfaceStatus])
	peerTunnels := ws[1].host.RealVPP.CLI(t, "show vxlan tunnel")

	for _, c := range []struct {
		name string
		stop func() error
	}{
		{"SIGTERM", func() error { return h1.Agent.Stop(10 * time.Second) }},
		{"SIGKILL", func() error { h1.Agent.Kill(); return nil }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var took time.Duration
			lost, stats := restartDuringPing(t, cs[0], cs[1].ip, func() error {
				start := time.Now()
				if err := c.stop(); err != nil {
					return err
				}
				if err := h1.Agent.Start(); err != nil {
					return err
				}
				err := h1.AwaitReady(harness.WaitTimeout)
				took = time.Since(start)
				return err
			})
			t.Logf("ping across host 1's agent restart (%s, ready again after %v): %s, %d lost", c.name, took.Round(time.Millisecond), stats, lost)
			if lost > 1 {
				t.Errorf("%d pings lost across host 1's agent restart, want at most 1", lost)
			}
			if got := ws[1].host.RealVPP.CLI(t, "show vxlan tunnel"); got != peerTunnels {
				t.Errorf("host 2's tunnels changed across host 1's agent restart:\nbefore:\n%s\nafter:\n%s", peerTunnels, got)
			}
			st := harness.WaitStatus[schema.InterfaceStatus](t, ws[0].etcd, tunnelStatusKey(ws[1], ws[0]), 0, harness.Ready[schema.InterfaceStatus])
			if st.SwIfIndex != peerStatus.SwIfIndex || st.ObservedRevision != peerStatus.ObservedRevision {
				t.Errorf("host 2's tunnel status %+v, was %+v", st, peerStatus)
			}
		})
	}
}
