package realdp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/harness"
)

// The upstream memif config with mode "ip" on both ends, attached to no
// bridge (an IP-mode memif carries IP packets, no frames to switch).
const ipModeNet = `{"cniVersion":"1.0.0","type":"userspace","name":"memif-ip",
 "host":{"engine":"vpp","iftype":"memif","netType":"interface",
         "memif":{"role":"master","mode":"ip"}},
 "container":{"engine":"vpp","iftype":"memif","netType":"interface",
              "memif":{"role":"slave","mode":"ip"}},
 "ipam":{"type":"host-local","subnet":"10.58.0.0/24","routes":[{"dst":"10.99.0.0/16"}],"gateway":"10.58.0.1"}}`

// TestMemifIPModeBothSides: IP-mode memifs converge on the host VPP and in
// each container's VPP (neither agent sets a MAC on them: VPP 25.02
// answers -9 Unimplemented), the two ends connect, the container side
// carries its address; DEL leaves nothing.
func TestMemifIPModeBothSides(t *testing.T) {
	w := newWorld(t, harness.HostOptions{RealVPP: true})
	a, b := w.pair(ipModeNet)
	for _, c := range []*container{a, b} {
		eventually(t, 30*time.Second, "container "+c.id+"'s IP-mode memif connected", func() (bool, string) {
			out := c.ctr.RealVPP.CLI(t, "show memif")
			return strings.Contains(out, "mode ip") && strings.Contains(out, "connected"), out
		})
		if addr := c.ctr.RealVPP.CLI(t, "show interface addr"); !strings.Contains(addr, c.ip+"/24") {
			t.Errorf("container %s: address %s missing:\n%s", c.id, c.ip, addr)
		}
	}
	if out := w.host.RealVPP.CLI(t, "show memif"); strings.Count(out, "mode ip") != 2 {
		t.Errorf("host VPP memifs:\n%s", out)
	}
	w.delClean(ipModeNet, a, b, []string{socketOf(t, w, a), socketOf(t, w, b)})
}
