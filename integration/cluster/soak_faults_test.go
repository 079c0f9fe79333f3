package cluster_test

import (
	"fmt"
	"time"

	"github.com/uspace-io/uspace/integration/spdksim"
)

// fault injects one fault and recovers from it.
func (s *soak) fault() string {
	t := s.t
	sh := s.host()
	switch s.rng.IntN(9) {
	case 0:
		return s.killHostAgent(sh)
	case 1: // partition while intents change
		sh = s.hosts[1]
		s.res.dirty[sh] = true
		sh.link.Cut()
		objs, dels := s.directEdits(sh)
		s.apply(objs, dels)
		sh.link.Heal()
		s.stats["fault:partition"]++
		return fmt.Sprintf("%s partitioned while %d intents changed, healed", sh.h.Name, len(objs)+len(dels))
	case 2: // a member stopped during an ADD
		i := s.rng.IntN(len(s.e.Cluster.Members))
		m := s.e.Cluster.Members[i]
		m.Stop(t)
		what := s.add(sh)
		if err := m.Restart(t); err != nil {
			t.Fatal(err)
		}
		s.e.Cluster.WaitLeader(t)
		s.stats["fault:member-stop"]++
		return fmt.Sprintf("member %d stopped during %s, restarted", i, what)
	case 3: // the leader stopped
		lead := s.e.Cluster.WaitLeader(t)
		m := s.e.Cluster.Members[lead]
		m.Stop(t)
		s.e.Cluster.WaitLeader(t)
		if err := m.Restart(t); err != nil {
			t.Fatal(err)
		}
		s.e.Cluster.WaitLeader(t)
		s.stats["fault:leader-stop"]++
		return fmt.Sprintf("leader %d stopped and restarted", lead)
	case 4: // compaction
		resp, err := s.e.Store.Etcd().Get(bg(), "compaction-probe")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.e.Store.Etcd().Compact(bg(), resp.Header.Revision); err != nil {
			t.Fatal(err)
		}
		s.stats["fault:compact"]++
		return fmt.Sprintf("compacted at revision %d", resp.Header.Revision)
	case 5:
		s.restartVPP(sh.h.RealVPP, sh.h.VPP)
		settled(t, s.e, sh.h)
		s.stats["fault:vpp-kill"]++
		return "VPP of " + sh.h.Name + " killed and restarted empty"
	case 6:
		s.restartSPDK(sh)
		settled(t, s.e, sh.h)
		s.stats["fault:spdk-kill"]++
		return "SPDK of " + sh.h.Name + " killed and restarted empty"
	case 7:
		l := sh.live()[s.rng.IntN(len(sh.live()))]
		l.c.Agent.Kill()
		if err := l.c.Agent.Start(); err != nil {
			t.Fatal(err)
		}
		s.stats["fault:container-agent-kill"]++
		return "container agent of " + l.id + " killed and restarted"
	default:
		l := sh.live()[s.rng.IntN(len(sh.live()))]
		s.restartVPP(l.c.RealVPP, l.c.VPP)
		settledCtr(t, s.e, l)
		s.stats["fault:container-vpp-kill"]++
		return "VPP of container " + l.id + " killed and restarted empty"
	}
}

// killHostAgent kills sh's host agent (SIGKILL) while it applies a change
// of intents, and starts it again. On the simulator every VPP call is
// slowed down first, so the kill lands mid-reconcile; a real VPP is
// caught wherever it is.
func (s *soak) killHostAgent(sh *soakHost) string {
	t := s.t
	if sh.h.VPP != nil {
		if err := sh.h.VPP.SetLatency("", 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	objs, dels := s.directEdits(sh)
	s.apply(objs, dels)
	s.res.dirty[sh] = true
	sh.h.Agent.Kill()
	if sh.h.VPP != nil {
		sh.h.VPP.ClearFaults()
	}
	sh.h.RestartAgent(t)
	s.stats["fault:host-agent-kill"]++
	return "host agent of " + sh.h.Name + " killed mid-reconcile and restarted"
}

// restartSPDK kills sh's SPDK and starts it again, empty.
func (s *soak) restartSPDK(sh *soakHost) {
	s.res.dirty[sh] = true
	if sp := sh.h.RealSPDK; sp != nil {
		sp.Kill(s.t)
		sp.Start(s.t)
		return
	}
	if err := sh.h.SPDK.Restart(spdksim.RestartOptions{Downtime: 100 * time.Millisecond}); err != nil {
		s.t.Fatal(err)
	}
}
