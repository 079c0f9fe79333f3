package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/volume"
)

// The soak's world: three hosts, one of them (node2) reaching etcd
// through a link the soak cuts; two CNI networks per host, the first of
// which spans the hosts (a VNI; VXLAN tunnels over the hosts' underlay);
// per host a long-lived application container and at most one short-lived
// one with a VPP and a container agent of their own, and containers that
// are only network namespaces. On the real dataplanes every VPP and SPDK
// is a real one, each host's VPP in a network namespace of its own whose
// only link is a veth into a bridge shared by the hosts.

const (
	spanNetVNI = 4242
	// soakRingBuffers is what a connected memif slave holds in its VPP:
	// its rx ring (1024 slots, VPP's default) filled with buffers.
	soakRingBuffers = 1024
)

// soakNets are the networks every host has: 0 spans the hosts, each with
// its own part of 10.56.0.0/24; 1 stays on each host (10.57.<host>.0/24).
// Both give their containers the default route, so a container on both
// has two paths of 0.0.0.0/0, one through each interface, and each must
// go with its own interface alone.
func soakNets(i int) []cniNet {
	return []cniNet{
		{name: "span-net", bridge: 4, net24: "10.56.0", first: 10 + 80*i, last: 89 + 80*i, vni: spanNetVNI},
		{name: "memif-net-b", bridge: 6, net24: fmt.Sprintf("10.57.%d", i+1)},
	}
}

type soak struct {
	t      *testing.T
	cfg    soakConfig
	e      *harness.Etcd
	rng    *rand.Rand
	hosts  []*soakHost
	seq    int
	stats  map[string]int // operations and faults done, by kind
	cycles int            // ADD/DEL cycles completed (an ADD's attachment DELed)
	checks int            // invariant checks run
	pings  int
	res    *resources
}

// soakHost is one host of the soak with everything the soak does to it
// and the state it expects there.
type soakHost struct {
	h    *harness.Host
	link *etcdLink // nil: the agent reaches etcd directly
	// nets are the CNI networks of the host, index as in soakNets.
	nets []*cniHost
	vols *volume.Driver
	// app is a container with its own VPP and container agent for the
	// whole soak; its interfaces come and go through CNI like every
	// other attachment. guest is one that comes and goes, nil when none.
	app   *liveCtr
	guest *liveCtr

	// The model: what must exist, and nothing else.
	atts    map[[2]string]*soakAtt // by {container, ifname}
	direct  map[string]*schema.HostInterface
	volumes map[string]string // name -> mount ID
}

// liveCtr is a container with a VPP and a container agent.
type liveCtr struct {
	id    string
	netns ns.NetNS
	c     *harness.Container
}

// soakAtt is one CNI attachment.
type soakAtt struct {
	netns ns.NetNS
	net   int
	ip    string // the first address the ADD returned, without its length
	// ns is owned by the attachment (a container that is only a network
	// namespace): the DEL releases it.
	ownNS bool
}

// soakTickMs is the soak's etcd heartbeat, as deployments have it (etcd's
// default), not the test framework's 10 ms: real VPPs and SPDKs on a
// shared 2-core machine starve the leader of 10 ms slots, and the members
// then hold elections instead of committing (requests time out).
const soakTickMs = 100

// startSoakCluster starts the etcd cluster and restarts its members with
// soakTickMs (the framework has no setting for it).
func startSoakCluster(t *testing.T) *harness.Etcd {
	e := startCluster(t)
	for _, m := range e.Cluster.Members {
		m.Stop(t)
	}
	for _, m := range e.Cluster.Members {
		m.TickMs = soakTickMs
		if err := m.Restart(t); err != nil {
			t.Fatal(err)
		}
	}
	e.Cluster.WaitLeader(t)
	return e
}

func newSoak(t *testing.T, cfg soakConfig) *soak {
	s := &soak{t: t, cfg: cfg, e: startSoakCluster(t), rng: rand.New(rand.NewPCG(cfg.seed, cfg.seed>>1|1)),
		stats: map[string]int{}}
	var u *realdp.Underlay
	if cfg.real {
		u = realdp.NewUnderlay(t, 3)
	}
	ctx, cancel := context.WithCancel(bg())
	t.Cleanup(cancel)
	for i, name := range []string{"node1", "node2", "node3"} {
		sh := &soakHost{atts: map[[2]string]*soakAtt{}, direct: map[string]*schema.HostInterface{}, volumes: map[string]string{}}
		opts := soakHostOptions(i, u)
		if name == "node2" {
			sh.h, sh.link = startLinkedHostOn(t, s.e, name, opts)
		} else {
			sh.h = s.e.StartHostOn(t, name, opts)
		}
		// The plugin and the driver reach etcd directly: a partition
		// cuts the agent only.
		for _, n := range soakNets(i) {
			sh.nets = append(sh.nets, newCNINetwork(t, sh.h, n, s.e.Endpoints))
		}
		if err := volume.PrepareRoot(sh.h.VolumeRoot); err != nil {
			t.Fatal(err)
		}
		var err error
		sh.vols, err = volume.New(ctx, s.e.Store, volume.Config{Host: name, Root: sh.h.VolumeRoot,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		sh.app = s.startCtr(sh, "app-"+name, newNS(t))
		s.hosts = append(s.hosts, sh)
	}
	s.res = newResources(s)
	// The app containers start on every network: pings from the first
	// step on.
	for _, sh := range s.hosts {
		for n := range sh.nets {
			s.attachApp(sh, n)
		}
	}
	return s
}

// soakHostOptions are host i's dataplanes and its agent's underlay: on
// the simulators an uplink on lo (they make no frames), on the real ones
// the host's end of the underlay, in the namespace its VPP runs in.
func soakHostOptions(i int, u *realdp.Underlay) harness.HostOptions {
	if u == nil {
		return harness.HostOptions{AgentFlags: []string{"--underlay-ip", underlay(i).String() + "/24", "--uplink", "lo"}}
	}
	return harness.HostOptions{RealVPP: true, RealSPDK: true, VPPNetns: u.Netns[i], VPPPlugins: []string{"vxlan", "af_packet"},
		AgentFlags: []string{"--underlay-ip", fmt.Sprintf("192.168.79.%d/24", i+1), "--uplink", u.Links[i], "--uplink-netns", u.Netns[i]}}
}

// startCtr starts a container's VPP, in its namespace, and its agent.
func (s *soak) startCtr(sh *soakHost, id string, netns ns.NetNS) *liveCtr {
	c := s.e.StartContainerOn(s.t, sh.h.Name, sh.h.SharedDir, harness.ContainerOptions{RealVPP: s.cfg.real, Netns: netns.Path()},
		[]string{"--container-id", id})
	return &liveCtr{id: id, netns: netns, c: c}
}

// stopCtr ends a container: its agent and its VPP die with it.
func (s *soak) stopCtr(l *liveCtr) {
	l.c.Agent.Kill()
	if l.c.RealVPP != nil {
		l.c.RealVPP.Discard(s.t)
	} else {
		l.c.VPP.Close()
	}
	releaseNS(l.netns)
}

// live lists the containers of sh that have a VPP and an agent.
func (sh *soakHost) live() []*liveCtr {
	if sh.guest == nil {
		return []*liveCtr{sh.app}
	}
	return []*liveCtr{sh.app, sh.guest}
}

// restartVPP kills a VPP, real or simulated, and starts it again, empty.
func (s *soak) restartVPP(real *realdp.VPP, sim *vppsim.Sim) {
	if real != nil {
		real.Kill(s.t)
		real.Start(s.t)
		return
	}
	if err := sim.Restart(); err != nil {
		s.t.Fatal(err)
	}
}

// releaseNS removes a network namespace the soak made, now rather than at
// the test's end: thousands of cycles would otherwise keep thousands.
func releaseNS(n ns.NetNS) {
	n.Close()
	_ = testutils.UnmountNS(n)
}

// settledCtr polls, bounded, until c's VPP holds exactly what the
// container's intents and current statuses say: for a container VPP
// restarted under its agent, as settled is for a host's.
func settledCtr(t testing.TB, e *harness.Etcd, l *liveCtr) {
	t.Helper()
	deadline := time.Now().Add(harness.WaitTimeout)
	for {
		rec := &recorder{TB: t}
		checkVPP(rec, "container "+l.id, ctrVPP(t, l.c), currentCtr(rec, e, l.c.Host, l.id))
		if len(rec.msgs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s did not settle within %v:\n%v", l.id, harness.WaitTimeout, rec.msgs)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
