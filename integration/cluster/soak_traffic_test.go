package cluster_test

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
)

// endpoint is a live container's address on one network.
type endpoint struct {
	sh  *soakHost
	l   *liveCtr
	net int
	ip  string
}

// traffic pings, from a live container's VPP, another live container on
// the same host and network, and one on another host across the network
// that spans hosts (a random pair of each kind, when there is one): every
// ping must get replies.
func (s *soak) traffic() {
	var ends []endpoint
	for _, sh := range s.hosts {
		for _, l := range sh.live() {
			for k, a := range sh.atts {
				if k[0] == l.id && a.ip != "" {
					ends = append(ends, endpoint{sh, l, a.net, a.ip})
				}
			}
		}
	}
	slices.SortFunc(ends, func(a, b endpoint) int { return cmp.Compare(a.ip, b.ip) })
	var same, cross [][2]endpoint
	for _, a := range ends {
		for _, b := range ends {
			switch {
			case a.l == b.l || a.net != b.net:
			case a.sh == b.sh:
				same = append(same, [2]endpoint{a, b})
			case soakNets(0)[a.net].vni != 0:
				cross = append(cross, [2]endpoint{a, b})
			}
		}
	}
	for _, pairs := range [][][2]endpoint{same, cross} {
		if len(pairs) > 0 {
			s.ping(pairs[s.rng.IntN(len(pairs))])
		}
	}
}

// ping pings p[1] from p[0]'s VPP; a ping that gets no reply fails the
// soak, and one across hosts says which neighbour entries are stale.
func (s *soak) ping(p [2]endpoint) {
	s.pings++
	s.stats["ping"]++
	_, err := p[0].l.c.RealVPP.Ping(p[1].ip, harness.WaitTimeout)
	if err != nil {
		if p[0].sh != p[1].sh {
			if stale := s.staleUplinkNeighbours(p[0].sh, p[1].sh); len(stale) > 0 {
				err = fmt.Errorf("%w; stale neighbour entries: %s", err, strings.Join(stale, "; "))
			}
		}
		s.t.Errorf("%s on %s -> %s on %s: %v", p[0].l.id, p[0].sh.h.Name, p[1].l.id, p[1].sh.h.Name, err)
		for _, e := range p {
			s.t.Logf("--- %s VPP ---\n%s--- %s VPP ---\n%s", e.l.id, diagnose(e.l.c.RealVPP), e.sh.h.Name, diagnose(e.sh.h.RealVPP))
		}
	}
}

// staleUplinkNeighbours finds the neighbour entries either host's VPP
// holds for the other's underlay address with a MAC other than the one the
// other's uplink has now: what a host VPP restarted with a new uplink MAC
// would leave (VPP's neighbour entries do not age), with nothing to
// correct them if its ARP requests carried another sender address.
func (s *soak) staleUplinkNeighbours(a, b *soakHost) []string {
	var stale []string
	for _, d := range [][2]*soakHost{{a, b}, {b, a}} {
		from, to := d[0], d[1]
		uplink := "host-" + agentFlag(to.h, "--uplink")
		var mac string
		for _, i := range s.res.states[to.h.Name].Interfaces {
			if i.Name == uplink {
				mac = i.MAC
			}
		}
		ip := strings.Split(agentFlag(to.h, "--underlay-ip"), "/")[0]
		out, _ := from.h.RealVPP.Exec("show ip neighbors")
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if i := slices.Index(f, ip); i >= 0 && len(f) >= i+4 && f[i+2] != mac {
				stale = append(stale, fmt.Sprintf("%s holds %s at %s, %s's uplink is %s", from.h.Name, ip, f[i+2], to.h.Name, mac))
			}
		}
	}
	return stale
}

// diagnose is what a VPP says about the path a ping takes, for a ping
// that got no reply.
func diagnose(v *realdp.VPP) string {
	var b strings.Builder
	for _, c := range []string{"show interface", "show interface addr", "show memif", "show bridge-domain", "show l2fib verbose",
		"show vxlan tunnel", "show ip neighbors", "show hardware-interfaces", "show errors"} {
		out, err := v.Exec(c)
		fmt.Fprintf(&b, "# %s\n%s%v\n", c, out, err)
	}
	return b.String()
}
