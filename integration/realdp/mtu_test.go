package realdp_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/schema"
)

// TestFullSizeFramesAcrossRealVPPs: on a network that spans hosts, the
// uplink in VPP takes its Linux interface's MTU and every interface of the
// network that less VXLAN's 50 bytes, on both sides of each memif, as the
// CNI result says; then IP packets of exactly that size pass between
// containers on two hosts, a larger one with DF set is refused by the
// sending container's VPP (counted, not lost on the way), and the uplink
// keeps forwarding. Before, every interface kept VPP's 9000: on a 1500
// underlay a 1472-byte ping got no reply, and a DF packet too large for
// the underlay left the container and vanished without a count.
func TestFullSizeFramesAcrossRealVPPs(t *testing.T) {
	for _, underlay := range []int{9000, 1500} {
		t.Run(fmt.Sprintf("underlay MTU %d", underlay), func(t *testing.T) { fullSizeFrames(t, underlay) })
	}
}

func fullSizeFrames(t *testing.T, underlay int) {
	overlay := underlay - 50
	ws, links := spanHosts(t, underlay)
	var cs []*container
	for i, w := range ws {
		conf := strings.Replace(spanNet(10*(i+1), 10*(i+1)+9), `"cniVersion":"1.0.0"`, `"cniVersion":"1.1.0"`, 1)
		c := newContainer(t)
		res := w.add(w.netconf(conf), c, "net1")
		for _, itf := range res.Interfaces {
			if itf.Mtu != overlay {
				t.Errorf("%s: CNI result interface %s has mtu %d, want %d", w.host.Name, itf.Name, itf.Mtu, overlay)
			}
		}
		w.startAgent(c)
		cs = append(cs, c)
	}
	for i, w := range ws {
		host := harness.WaitStatus[schema.InterfaceStatus](t, w.etcd, hostStatusKey(cs[i], "net1"), 0, harness.Ready[schema.InterfaceStatus])
		up := harness.WaitStatus[schema.InterfaceStatus](t, w.etcd, schema.StatusKey(schema.Key{Kind: schema.KindUplinkKey, Host: w.host.Name}),
			0, harness.Ready[schema.InterfaceStatus])
		ctr := w.waitCtrReady(cs[i], "net1")
		if host.MTU != uint32(overlay) || up.MTU != uint32(underlay) {
			t.Errorf("%s: host interface status mtu %d (want %d), uplink status mtu %d (want %d)", w.host.Name, host.MTU, overlay, up.MTU, underlay)
		}
		for _, v := range []struct {
			vpp    *realdp.VPP
			ifname string
			want   int
		}{{w.host.RealVPP, "host-" + links[i], underlay}, {w.host.RealVPP, host.InterfaceName, overlay}, {cs[i].ctr.RealVPP, ctr.InterfaceName, overlay}} {
			eventually(t, 20*time.Second, fmt.Sprintf("%s: MTU %d on %s", w.host.Name, v.want, v.ifname), func() (bool, string) {
				return l3MTU(t, v.vpp, v.ifname) == v.want, v.vpp.CLI(t, "show interface "+v.ifname)
			})
		}
	}

	from, to := cs[0].ctr.RealVPP, cs[1].ctr.RealVPP
	t.Logf("small frames: %s", ping(t, from, cs[1].ip))
	// Linux ping -s counts the ICMP payload: an IP packet of the
	// interface's MTU carries MTU-28; 1472 is the full-size ping.
	for _, payload := range []int{1472, overlay - 28} {
		if payload > overlay-28 {
			continue
		}
		n, out := pingPayload(t, from, cs[1].ip, payload)
		if n == 0 {
			t.Errorf("%d-byte ping (IP packet %d, interfaces %d): no reply:\n%s\n%s", payload, payload+28, overlay, out, from.CLI(t, "show errors"))
		} else {
			t.Logf("%d-byte ping: %d of 3 replies", payload, n)
		}
	}

	// Don't-fragment packets from the container's VPP (its ping sets no
	// DF): one of exactly the MTU reaches the other container, one byte
	// more is refused where it starts.
	replies := errCount(t, to, "echo replies sent")
	sendDF(t, from, "mtu", cs[0].ip, cs[1].ip, overlay)
	eventually(t, 10*time.Second, fmt.Sprintf("a %d-byte DF packet answered", overlay), func() (bool, string) {
		return errCount(t, to, "echo replies sent") > replies, to.CLI(t, "show errors")
	})
	refused := errCount(t, from, "MTU exceeded and DF set")
	sendDF(t, from, "over", cs[0].ip, cs[1].ip, overlay+1)
	eventually(t, 10*time.Second, fmt.Sprintf("a %d-byte DF packet refused by the sender", overlay+1), func() (bool, string) {
		return errCount(t, from, "MTU exceeded and DF set") > refused, from.CLI(t, "show errors")
	})
	if underlay == 1500 {
		// Without DF the container's VPP fragments what exceeds its MTU,
		// the 1472-byte ping included.
		for _, payload := range []int{1472, 3000} {
			if n, out := pingPayload(t, from, cs[1].ip, payload); n == 0 {
				t.Errorf("%d-byte ping, fragmented: no reply:\n%s\n%s", payload, out, from.CLI(t, "show errors"))
			} else {
				t.Logf("%d-byte ping, fragmented: %d of 3 replies", payload, n)
			}
		}
	}
	t.Logf("small frames still pass: %s", ping(t, from, cs[1].ip))
	for _, w := range ws {
		if out := w.host.RealVPP.CLI(t, "show errors"); strings.Contains(out, "sendto") {
			t.Errorf("%s: the uplink failed to send:\n%s", w.host.Name, out)
		}
	}
}

// pingPayload pings dst from v three times with ICMP payloads of payload
// bytes as Linux ping -s counts them (VPP's size counts 8 bytes of its own
// on top) and returns how many replies came back.
func pingPayload(t *testing.T, v *realdp.VPP, dst string, payload int) (int, string) {
	t.Helper()
	out := v.CLI(t, fmt.Sprintf("ping %s size %d repeat 3 interval 0.5", dst, payload-8))
	_, n, ok := realdp.PingCounts(out)
	if !ok {
		t.Fatalf("ping %s: no statistics in:\n%s", dst, out)
	}
	return n, out
}

// sendDF makes v send one ICMP echo request of size bytes (IP header
// included) with don't-fragment set, through its packet generator.
func sendDF(t *testing.T, v *realdp.VPP, name, src, dst string, size int) {
	t.Helper()
	v.CLI(t, fmt.Sprintf("packet-generator new { name %s limit 1 size %d-%d node ip4-lookup data { ICMP: %s -> %s df ICMP echo_request incrementing 100 } }",
		name, size, size, src, dst))
	v.CLI(t, "packet-generator enable-stream "+name)
}

// l3MTU is an interface's L3 MTU as `show interface` lists it (0: unknown).
func l3MTU(t *testing.T, v *realdp.VPP, ifname string) int {
	t.Helper()
	for _, l := range strings.Split(v.CLI(t, "show interface "+ifname), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[0] == ifname {
			n, _ := strconv.Atoi(strings.Split(f[3], "/")[0])
			return n
		}
	}
	return 0
}

// errCount sums the `show errors` counters whose reason contains reason.
func errCount(t *testing.T, v *realdp.VPP, reason string) int {
	t.Helper()
	total := 0
	for _, l := range strings.Split(v.CLI(t, "show errors"), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.Contains(l, reason) {
			n, _ := strconv.Atoi(f[0])
			total += n
		}
	}
	return total
}
