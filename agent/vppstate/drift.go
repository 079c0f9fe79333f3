package vppstate

import (
	"context"
	"fmt"
)

// Drift is an interface uspace made that someone else deleted or set
// admin down in VPP (an operator with vppctl, another API client).
type Drift struct {
	Owner     string
	Name      string
	SwIfIndex uint32
	Deleted   bool
}

func (d Drift) String() string {
	what := "set admin down"
	if d.Deleted {
		what = "deleted"
	}
	return fmt.Sprintf("interface %s (sw_if_index %d) was %s in VPP outside uspace", d.Name, d.SwIfIndex, what)
}

// Drifted takes the interface events VPP sent since the last call and
// returns the interfaces of the view that someone else deleted or set
// admin down. Events also echo the agent's own changes, late: a
// candidate is confirmed by reading the interface back before it counts.
// Any drift drops the view, so the reconciles that repair it reload VPP's
// state. known is false when the events could not be matched to owners
// (no view of the current connection, or VPP did not answer): the caller
// must then check every interface.
func (c *Cache) Drifted(ctx context.Context) (drifts []Drift, known bool) {
	gen := c.vpp.Generation()
	var evs []uint32
	deleted := map[uint32]bool{}
	for _, ev := range c.vpp.TakeInterfaceEvents() {
		// Events of an earlier connection: its reconnect resyncs anyway.
		if ev.Generation == gen {
			evs = append(evs, ev.SwIfIndex)
			deleted[ev.SwIfIndex] = ev.Deleted
		}
	}
	if len(evs) == 0 {
		return nil, true
	}
	if c.s == nil || c.gen != gen {
		return nil, false
	}
	for _, idx := range evs {
		have, ok := c.s.ifs[idx]
		owner, mine := have.Owner()
		if !ok || !mine || c.s.byOwner[owner] != idx {
			continue // not uspace's, or already removed by the agent
		}
		if !deleted[idx] && !have.AdminUp {
			continue // the view does not claim it up: nothing to contradict
		}
		now, exists, err := c.vpp.LookupInterface(ctx, idx)
		if err != nil {
			c.log.Warn("reading back an interface VPP reported changed failed", "swIfIndex", idx, "err", err)
			c.drop()
			return nil, false
		}
		if exists && now.Tag == have.Tag && now.AdminUp {
			continue // an echo of the agent's own change
		}
		drifts = append(drifts, Drift{Owner: owner, Name: have.Name, SwIfIndex: idx, Deleted: !exists || now.Tag != have.Tag})
	}
	if len(drifts) > 0 {
		c.drop()
	}
	return drifts, true
}
