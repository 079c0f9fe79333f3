package realdp_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/schema"
)

// spanNet is the upstream memif network made to span hosts (uspace.vni);
// each host's host-local hands out its own part of the subnet.
func spanNet(first, last int) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","type":"userspace","name":"span-network",
 "host":{"engine":"vpp","iftype":"memif","netType":"bridge",
         "memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeName":"4"}},
 "container":{"engine":"vpp","iftype":"memif","netType":"interface",
              "memif":{"role":"slave","mode":"ethernet"}},
 "uspace":{"vni":4242},
 "ipam":{"type":"host-local","subnet":"10.57.0.0/24","rangeStart":"10.57.0.%d","rangeEnd":"10.57.0.%d"}}`, first, last)
}

// spanHosts starts two hosts, each with a real VPP in a network namespace
// of its own whose only link to the other is a veth pair of MTU mtu, and
// with its host agent joined to networks that span hosts over that link
// (--underlay-ip, --uplink, and --uplink-netns: the agent runs in the
// test's namespace). It returns the hosts' worlds, on one etcd, and the
// veth ends.
func spanHosts(t *testing.T, mtu int) ([]*world, []string) {
	t.Helper()
	realdp.NeedVPP(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	sfx := hex.EncodeToString(b[:])
	links := []string{"usa" + sfx, "usb" + sfx}
	var nss []string
	for i := range links {
		nss = append(nss, realdp.Netns(t, hostNetns(i, links)))
	}
	realdp.Run(t, "ip", "link", "add", links[0], "mtu", strconv.Itoa(mtu), "type", "veth", "peer", "name", links[1], "mtu", strconv.Itoa(mtu))
	for i, l := range links {
		realdp.Run(t, "ip", "link", "set", l, "netns", nss[i])
	}
	e := harness.StartEtcd(t)
	cni := libcni.NewCNIConfigWithCacheDir([]string{binaries.Dir(t, "userspace", "host-local")}, t.TempDir(), nil)
	var ws []*world
	for i := range links {
		h := e.StartHostOn(t, "node"+strconv.Itoa(i+1), harness.HostOptions{RealVPP: true,
			VPPNetns: nss[i], VPPPlugins: []string{"vxlan", "af_packet"},
			AgentFlags: []string{"--underlay-ip", fmt.Sprintf("192.168.78.%d/24", i+1), "--uplink", links[i], "--uplink-netns", nss[i]}})
		ws = append(ws, &world{t: t, etcd: e, host: h, cni: cni, ipamDir: t.TempDir()})
	}
	return ws, links
}

// hostNetns is the name of the network namespace of host i of spanHosts,
// whose veth ends are links.
func hostNetns(i int, links []string) string { return "usx" + strconv.Itoa(i) + links[0][3:] }

// spanTwoHosts is spanHosts over a 1500-byte link, then a container with a
// real VPP on each host, on one network with a VNI (confs: each host's
// config), once both hosts' tunnels are ready.
func spanTwoHosts(t *testing.T) (ws []*world, cs []*container, confs []string) {
	t.Helper()
	ws, cs, _, confs = spanTwoHostsLinks(t)
	return ws, cs, confs
}

// spanTwoHostsLinks is spanTwoHosts that also returns the veth ends.
func spanTwoHostsLinks(t *testing.T) (ws []*world, cs []*container, links, confs []string) {
	t.Helper()
	ws, links = spanHosts(t, 1500)
	e := ws[0].etcd
	confs = []string{spanNet(10, 19), spanNet(20, 29)}
	for i, w := range ws {
		c := newContainer(t)
		w.add(w.netconf(confs[i]), c, "net1")
		w.startAgent(c)
		cs = append(cs, c)
	}
	for i, w := range ws {
		w.waitCtrReady(cs[i], "net1")
		harness.WaitStatus[schema.InterfaceStatus](t, e, tunnelStatusKey(w, ws[1-i]), 0, harness.Ready[schema.InterfaceStatus])
	}
	return ws, cs, links, confs
}

// tunnelStatusKey is the status of w's tunnel to peer on span-network.
func tunnelStatusKey(w, peer *world) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindTunnelKey, Host: w.host.Name, Network: "span-network", Peer: peer.host.Name})
}

// TestNetworkSpansRealVPPs: two hosts, each with a real VPP in a network
// namespace of its own whose only link to the other is a veth pair, and
// with its host agent joined to networks that span hosts over that link
// (--underlay-ip, --uplink). A container on each host, on one network with
// a VNI, gets a real container VPP; the one on host 1 pings the one on
// host 2 through host 1's bridge domain, the VXLAN tunnel the agents made,
// and host 2's bridge domain. DEL of one side takes the tunnels down.
func TestNetworkSpansRealVPPs(t *testing.T) {
	ws, cs, confs := spanTwoHosts(t)
	e := ws[0].etcd
	t.Logf("host 1 -> host 2: %s", ping(t, cs[0].ctr.RealVPP, cs[1].ip))
	t.Logf("host 2 -> host 1: %s", ping(t, cs[1].ctr.RealVPP, cs[0].ip))
	for _, w := range ws {
		if out := w.host.RealVPP.CLI(t, "show vxlan tunnel"); !strings.Contains(out, "vni 4242") {
			t.Errorf("%s: show vxlan tunnel:\n%s", w.host.Name, out)
		}
	}

	ws[1].del(ws[1].netconf(confs[1]), cs[1], "net1")
	for i, w := range ws {
		e.WaitGone(t, tunnelStatusKey(w, ws[1-i]))
	}
	e.WaitGone(t, schema.MemberKey(ws[1].host.Name, "span-network"))
	for _, w := range ws {
		if out := w.host.RealVPP.CLI(t, "show vxlan tunnel"); strings.Contains(out, "vni 4242") {
			t.Errorf("%s: tunnel left after the last member of host 2 went:\n%s", w.host.Name, out)
		}
	}
}

// neighbourMAC is the MAC v's neighbour entry for ip holds, "" for none
// (`show ip neighbors`: time, IP, flags, MAC, interface).
func neighbourMAC(t *testing.T, v *realdp.VPP, ip string) string {
	t.Helper()
	for _, l := range strings.Split(v.CLI(t, "show ip neighbors"), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && f[1] == ip {
			return f[3]
		}
	}
	return ""
}

// uplinkMAC is the MAC of v's af_packet interface.
func uplinkMAC(t *testing.T, v *realdp.VPP) string {
	t.Helper()
	out := v.CLI(t, "show hardware-interfaces")
	inHost := false
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && !strings.HasPrefix(l, " ") {
			inHost = strings.HasPrefix(f[0], "host-")
		}
		if inHost && len(f) == 3 && f[0] == "Ethernet" && f[1] == "address" {
			return f[2]
		}
	}
	t.Fatalf("no af_packet interface in:\n%s", out)
	return ""
}

// TestHostVPPRestartKeepsPeersNeighbour: host 1's VPP is killed (kill -9)
// and started again empty; once its agent has put its interfaces back,
// the uplink has the MAC it had (the Linux interface's), so the peer's
// neighbour entry for host 1's underlay address, which VPP never ages
// out, still points at it and traffic from host 2 to host 1 flows again
// without any entry being flushed. Host 1's ARP requests for host 2 carry
// its underlay address: its tunnel is made after its uplink's address.
func TestHostVPPRestartKeepsPeersNeighbour(t *testing.T) {
	ws, cs, links, _ := spanTwoHostsLinks(t)
	h1, h2 := ws[0].host.RealVPP, ws[1].host.RealVPP
	t.Logf("host 2 -> host 1: %s", ping(t, cs[1].ctr.RealVPP, cs[0].ip))
	t.Logf("host 1 -> host 2: %s", ping(t, cs[0].ctr.RealVPP, cs[1].ip))
	const underlay1, underlay2 = "192.168.78.1", "192.168.78.2"
	before := uplinkMAC(t, h1)
	if got := neighbourMAC(t, h2, underlay1); got != before {
		t.Fatalf("host 2's neighbour entry for %s is %q, host 1's uplink %s", underlay1, got, before)
	}
	names := ifNames(t, h1)
	arps := captureARPRequests(t, "/var/run/netns/"+hostNetns(1, links), links[1])
	h1.Kill(t)
	h1.Start(t)
	eventually(t, 30*time.Second, "host 1's VPP re-populated", func() (bool, string) {
		now := ifNames(t, h1)
		return len(now) == len(names), strings.Join(now, " ")
	})
	harness.WaitStatus[schema.InterfaceStatus](t, ws[0].etcd, tunnelStatusKey(ws[0], ws[1]), 0, harness.Ready[schema.InterfaceStatus])
	if after := uplinkMAC(t, h1); after != before {
		t.Errorf("host 1's uplink came back with MAC %s, had %s: host 2 still sends to the old one", after, before)
	}
	// A few seconds for the memifs to reconnect, not the minutes a stale
	// neighbour entry would take (it never ages out).
	got, err := cs[1].ctr.RealVPP.Ping(cs[0].ip, 10*time.Second)
	if err != nil {
		t.Fatalf("host 2 -> host 1 after host 1's VPP restarted: %v; host 2's neighbour for %s: %s, host 1's uplink: %s",
			err, underlay1, neighbourMAC(t, h2, underlay1), uplinkMAC(t, h1))
	}
	t.Logf("host 2 -> host 1 after the restart: %s", got)
	// Host 1's tunnel must not have been made before its uplink had its
	// address: VPP then asks for host 2 with the subnet's network address
	// as sender.
	asked := 0
	for _, a := range arps() {
		if a.target != underlay2 {
			continue
		}
		asked++
		if a.sender != underlay1 {
			t.Errorf("host 1 asked for %s with sender %s, not its underlay address %s: its tunnel came before its uplink's address", a.target, a.sender, underlay1)
		}
	}
	if asked == 0 {
		t.Errorf("host 1's VPP, restarted empty, never asked for host 2's underlay address %s", underlay2)
	}
	t.Logf("host 1 -> host 2 after the restart: %s", ping(t, cs[0].ctr.RealVPP, cs[1].ip))
}

// arpRequest is an ARP request seen on a link: who asks (sender address)
// for whom (target).
type arpRequest struct{ sender, target string }

// captureARPRequests records the ARP requests arriving on link, in network
// namespace netns, until the returned function is called; it returns
// them.
func captureARPRequests(t *testing.T, netns, link string) func() []arpRequest {
	t.Helper()
	const ethPARP = 0x0806
	proto := uint16(ethPARP>>8 | (ethPARP&0xff)<<8) // network byte order
	var fd int
	err := ns.WithNetNSPath(netns, func(ns.NetNS) error {
		li, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		if fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(proto)); err != nil {
			return err
		}
		return syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: proto, Ifindex: li.Index})
	})
	if err != nil {
		t.Fatalf("capture ARP on %s in %s: %v", link, netns, err)
	}
	tv := syscall.Timeval{Usec: 200000}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []arpRequest
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		buf := make([]byte, 1600)
		for {
			select {
			case <-done:
				return
			default:
			}
			// Ethernet (14) then ARP: op at 20, sender IP at 28, target IP at 38.
			n, _, err := syscall.Recvfrom(fd, buf, 0)
			if err != nil || n < 42 || buf[21] != 1 {
				continue
			}
			mu.Lock()
			seen = append(seen, arpRequest{sender: net.IP(buf[28:32]).String(), target: net.IP(buf[38:42]).String()})
			mu.Unlock()
		}
	}()
	stop := func() []arpRequest {
		select {
		case <-done:
		default:
			close(done)
			<-stopped
			syscall.Close(fd)
		}
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
	t.Cleanup(func() { stop() })
	return stop
}
