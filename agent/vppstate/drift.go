package vppstate

import (
	"context"
	"fmt"

	"github.com/uspace-io/uspace/agent/vpp"
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
// must then check every interface against a fresh view.
func (c *Cache) Drifted(ctx context.Context) (drifts []Drift, known bool) {
	gen := c.vpp.Generation()
	var evs []vpp.InterfaceEvent
	for _, ev := range c.vpp.TakeInterfaceEvents() {
		// Events of an earlier connection: its reconnect resyncs anyway.
		if ev.Generation == gen {
			evs = append(evs, ev)
		}
	}
	if len(evs) == 0 {
		return nil, true
	}
	if c.s == nil || c.gen != gen {
		return nil, false
	}
	var suspects []vpp.Interface
	for _, ev := range evs {
		have, ok := c.s.ifs[ev.SwIfIndex]
		owner, mine := have.Owner()
		if !ok || !mine || c.s.byOwner[owner] != ev.SwIfIndex {
			continue // not uspace's, or already removed by the agent
		}
		if ev.Deleted || (have.AdminUp && !ev.AdminUp) {
			suspects = append(suspects, have)
		}
	}
	if len(suspects) == 0 {
		return nil, true
	}
	now, err := c.readBack(ctx, suspects)
	if err != nil {
		c.log.Warn("reading back interfaces VPP reported changed failed", "err", err)
		c.drop()
		return nil, false
	}
	for _, have := range suspects {
		i, exists := now[have.SwIfIndex]
		if exists && i.Tag == have.Tag && i.AdminUp {
			continue // an echo of the agent's own change
		}
		owner, _ := have.Owner()
		drifts = append(drifts, Drift{Owner: owner, Name: have.Name, SwIfIndex: have.SwIfIndex, Deleted: !exists || i.Tag != have.Tag})
	}
	if len(drifts) > 0 {
		c.drop()
	}
	return drifts, true
}

// readBackOneByOne bounds the suspects read one interface dump each;
// beyond it one dump of every interface is cheaper.
const readBackOneByOne = 16

// readBack reads the suspects' interfaces as VPP holds them now; an
// interface VPP no longer has is absent from the map.
func (c *Cache) readBack(ctx context.Context, suspects []vpp.Interface) (map[uint32]vpp.Interface, error) {
	out := make(map[uint32]vpp.Interface, len(suspects))
	if len(suspects) > readBackOneByOne {
		all, err := c.vpp.Interfaces(ctx)
		if err != nil {
			return nil, err
		}
		for _, i := range all {
			out[i.SwIfIndex] = i
		}
		return out, nil
	}
	for _, have := range suspects {
		i, ok, err := c.vpp.LookupInterface(ctx, have.SwIfIndex)
		if err != nil {
			return nil, err
		}
		if ok {
			out[i.SwIfIndex] = i
		}
	}
	return out, nil
}
