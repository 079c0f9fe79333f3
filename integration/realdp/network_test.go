package realdp_test

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/schema"
)

// The upstream README's memif network (bridgeName "4"), with one more
// route so that routes the container agent adds can be told from VPP's own.
const memifNet = `{"cniVersion":"1.0.0","type":"userspace","name":"memif-network",
 "host":{"engine":"vpp","iftype":"memif","netType":"bridge",
         "memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeName":"4"}},
 "container":{"engine":"vpp","iftype":"memif","netType":"interface",
              "memif":{"role":"slave","mode":"ethernet"}},
 "ipam":{"type":"host-local","subnet":"10.56.217.0/24","rangeStart":"10.56.217.131",
         "rangeEnd":"10.56.217.190","routes":[{"dst":"10.99.0.0/16"}],"gateway":"10.56.217.1"}}`

// vhost-user with the VPP engine: the host VPP is the server, the
// container's the client, on one socket.
const vhostNet = `{"cniVersion":"1.0.0","type":"userspace","name":"vhost-network",
 "host":{"engine":"vpp","iftype":"vhostuser","netType":"bridge",
         "vhost":{"mode":"server"},"bridge":{"bridgeName":"7"}},
 "container":{"engine":"vpp","iftype":"vhostuser","netType":"interface",
              "vhost":{"mode":"client"}},
 "ipam":{"type":"host-local","subnet":"10.88.0.0/24","routes":[{"dst":"10.99.0.0/16"}],"gateway":"10.88.0.1"}}`

// pair adds two containers to list, starts their agents with real VPPs in
// their namespaces and waits until both sides converged.
func (w *world) pair(list string) (a, b *container) {
	w.t.Helper()
	conf := w.netconf(list)
	a, b = newContainer(w.t), newContainer(w.t)
	for _, c := range []*container{a, b} {
		w.add(conf, c, "net1")
		w.startAgent(c)
	}
	for _, c := range []*container{a, b} {
		w.waitCtrReady(c, "net1")
	}
	w.t.Logf("container VPP: %s", a.ctr.RealVPP.Version(w.t))
	return a, b
}

// delClean DELs both containers and checks that nothing of them is left:
// host VPP back to local0 alone, no bridge domain, memif socket id 0 only,
// no socket file; in the containers' VPPs no interface and no route.
func (w *world) delClean(list string, a, b *container, sockets []string) {
	w.t.Helper()
	conf := w.netconf(list)
	for _, c := range []*container{a, b} {
		w.del(conf, c, "net1")
	}
	for _, c := range []*container{a, b} {
		w.etcd.WaitGone(w.t, hostStatusKey(c, "net1"))
		eventually(w.t, 30*time.Second, "container VPP "+c.id+" back to local0, no route", func() (bool, string) {
			names := ifNames(w.t, c.ctr.RealVPP)
			fib := c.ctr.RealVPP.CLI(w.t, "show ip fib")
			return slices.Equal(names, []string{"local0"}) && !strings.Contains(fib, "10.99.0.0/16"),
				strings.Join(names, " ") + "\n" + fib
		})
	}
	v := w.host.RealVPP
	if names := ifNames(w.t, v); !slices.Equal(names, []string{"local0"}) {
		w.t.Errorf("host VPP interfaces after DEL: %v, want local0 only", names)
	}
	if bd := v.CLI(w.t, "show bridge-domain"); !strings.Contains(bd, "no bridge-domains in use") {
		w.t.Errorf("host VPP bridge domains after DEL:\n%s", bd)
	}
	if ids := memifSocketIDs(w.t, v); !slices.Equal(ids, []string{"0"}) {
		w.t.Errorf("host VPP memif socket ids after DEL: %v, want 0 only", ids)
	}
	for _, s := range sockets {
		if _, err := os.Stat(s); !errors.Is(err, os.ErrNotExist) {
			w.t.Errorf("socket file %s still there after DEL (%v)", s, err)
		}
	}
}

func socketOf(t *testing.T, w *world, c *container) string {
	t.Helper()
	s := harness.WaitStatus[schema.InterfaceStatus](t, w.etcd, hostStatusKey(c, "net1"), 0, harness.Ready[schema.InterfaceStatus])
	return s.SocketPath
}

// TestRealDataplanes runs the tier's end-to-end flows on one host whose
// VPP and SPDK are real, started once for all of them (each real instance
// costs seconds and hundreds of MB); every flow cleans up after itself and
// checks it did.
func TestRealDataplanes(t *testing.T) {
	w := newWorld(t, harness.HostOptions{RealVPP: true, RealSPDK: true})
	t.Run("memif ping through the host bridge domain", func(t *testing.T) { memifPing(w.on(t)) })
	t.Run("memif ping with socket files (uspace.memifSocket file)", func(t *testing.T) { memifFilePing(w.on(t)) })
	t.Run("vhost-user", func(t *testing.T) { vhostUser(w.on(t)) })
	t.Run("volumes", func(t *testing.T) { volumes(w.on(t)) })
	t.Run("restarts", func(t *testing.T) { restarts(w.on(t)) })
}

// memifPing: two containers on the upstream memif network; each
// container's own VPP pings the other's through the host VPP's bridge
// domain; DEL leaves nothing behind.
func memifPing(w *world) {
	t := w.t
	a, b := w.pair(memifNet)
	t.Logf("a -> b: %s", ping(t, a.ctr.RealVPP, b.ip))
	t.Logf("b -> a: %s", ping(t, b.ctr.RealVPP, a.ip))
	if fib := a.ctr.RealVPP.CLI(t, "show ip fib 10.99.0.0/16"); !strings.Contains(fib, "10.56.217.1") {
		t.Errorf("container route 10.99.0.0/16 via 10.56.217.1 missing:\n%s", fib)
	}
	w.delClean(memifNet, a, b, []string{socketOf(t, w, a), socketOf(t, w, b)})
}

// vhostUser: the host VPP serves a vhost-user socket per container and
// each container's VPP is the client on that same socket; DEL clean. No
// ping: VPP is a vhost-user backend on both ends, and two backends do not
// carry frames between them (a container needs a virtio frontend such as
// DPDK's virtio-user for that).
func vhostUser(w *world) {
	t := w.t
	a, b := w.pair(vhostNet)
	sockets := []string{socketOf(t, w, a), socketOf(t, w, b)}
	if names := ifNames(t, w.host.RealVPP); len(names) != 3 {
		t.Errorf("host VPP interfaces %v, want local0 and two VirtualEthernet", names)
	}
	hostView := w.host.RealVPP.CLI(t, "show vhost-user")
	for i, c := range []*container{a, b} {
		ctrView := c.ctr.RealVPP.CLI(t, "show vhost-user")
		if !strings.Contains(hostView, sockets[i]+" type server") || !strings.Contains(ctrView, sockets[i]+" type client") {
			t.Errorf("socket %s: want host server, container client; host:\n%s\ncontainer:\n%s", sockets[i], hostView, ctrView)
		}
	}
	w.delClean(vhostNet, a, b, sockets)
}

// restarts: a host VPP killed and restarted empty is re-populated and the
// containers ping again; the same for a container VPP; a restarted host
// agent adopts what VPP holds with zero write messages.
func restarts(w *world) {
	a, b := w.pair(memifNet)
	ping(w.t, a.ctr.RealVPP, b.ip)

	// crash kills v, starts it again empty and waits until its agent has
	// put back its want interfaces and a pings b again.
	crash := func(t *testing.T, name string, v *realdp.VPP, want int) {
		v.Kill(t)
		v.Start(t)
		eventually(t, 30*time.Second, name+" re-populated", func() (bool, string) {
			names := ifNames(t, v)
			return len(names) == want, strings.Join(names, " ")
		})
		t.Logf("a -> b after the %s restart: %s", name, ping(t, a.ctr.RealVPP, b.ip))
	}
	w.t.Run("host VPP kill -9", func(t *testing.T) { crash(t, "host VPP", w.host.RealVPP, 3) })
	w.t.Run("container VPP kill -9", func(t *testing.T) { crash(t, "container VPP", a.ctr.RealVPP, 2) })

	w.t.Run("host agent restart adopts with zero writes", func(t *testing.T) {
		proxy := realdpProxy(t, w)
		w.host.RestartAgent(t)
		waitAdopted(t, w, a, b)
		if writes := proxy.Writes(); len(writes) != 0 {
			t.Errorf("restarted host agent sent write messages to VPP: %v (all: %v)", writes, proxy.Counts())
		}
		if c := proxy.Counts(); c["sw_interface_dump"] == 0 {
			t.Errorf("restarted agent never dumped VPP's interfaces through the proxy: %v", c)
		}
		ping(t, a.ctr.RealVPP, b.ip)
	})
	w.delClean(memifNet, a, b, nil)
}

// realdpProxy stops the host agent and points its next start at a counting
// proxy in front of the real VPP.
func realdpProxy(t *testing.T, w *world) *realdp.APIProxy {
	t.Helper()
	if err := w.host.Agent.Stop(10 * time.Second); err != nil {
		t.Logf("host agent stop: %v", err)
	}
	p := realdp.StartAPIProxy(t, w.host.RealVPP.APISocket)
	args := w.host.Agent.Args
	for i := range args[:len(args)-1] {
		if args[i] == "--vpp-socket" {
			args[i+1] = p.Socket
		}
	}
	return p
}

var successes = regexp.MustCompile(`(?m)^uspace_reconciles_total\{controller="interfaces",result="ok"\} (\d+)`)

// waitAdopted waits until the restarted host agent has reconciled both
// interface keys successfully and its queue is empty.
func waitAdopted(t *testing.T, w *world, cs ...*container) {
	t.Helper()
	eventually(t, 30*time.Second, "restarted host agent reconciled every interface", func() (bool, string) {
		m := harness.HTTPGet(t, "http://"+w.host.MetricsAddr+"/metrics")
		got := successes.FindStringSubmatch(m)
		if got == nil {
			return false, "no successful interface reconcile yet"
		}
		n, _ := strconv.Atoi(got[1])
		r := harness.HTTPGet(t, "http://"+w.host.MetricsAddr+"/readyz")
		return n >= len(cs) && strings.Contains(r, `"interfaces":0`), got[0] + "\n" + r
	})
}
