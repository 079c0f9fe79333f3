package vpp

import (
	"context"
	"os"

	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
)

// InterfaceEvent is what VPP reported about one interface since the last
// TakeInterfaceEvents: its latest admin and link state, and whether it was
// deleted on the way (an index VPP reuses for a new interface keeps
// Deleted, so a deletion is never hidden by what came after it).
type InterfaceEvent struct {
	SwIfIndex uint32
	AdminUp   bool
	LinkUp    bool
	Deleted   bool
	// Generation is the connection the event came on: after a reconnect
	// the caller re-lists everything anyway.
	Generation uint64
}

// notifBuffer bounds the sw_interface_event messages GoVPP holds for the
// forwarder; GoVPP drops what does not fit, and the forwarder only
// records each one in a map.
const notifBuffer = 4096

// ifEvents coalesces interface events per sw_if_index until taken.
type ifEvents struct {
	pending map[uint32]InterfaceEvent
	ready   chan struct{} // capacity 1: "there is something to take"
}

// InterfaceEvents signals (without carrying them) that interface events
// wait in TakeInterfaceEvents. Only a client dialled with
// Config.InterfaceEvents subscribes to VPP's events; others never signal.
func (c *Client) InterfaceEvents() <-chan struct{} { return c.ifev.ready }

// TakeInterfaceEvents returns and forgets the interface events received
// since the last call, one per sw_if_index.
func (c *Client) TakeInterfaceEvents() []InterfaceEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]InterfaceEvent, 0, len(c.ifev.pending))
	for _, ev := range c.ifev.pending {
		out = append(out, ev)
	}
	clear(c.ifev.pending)
	return out
}

// watchInterfaces subscribes the session to sw_interface_event (VPP then
// reports every interface created, deleted, or changing admin or link
// state, whoever caused it) and records the events until ctx ends.
func (c *Client) watchInterfaces(ctx context.Context, s *session) error {
	ch, err := s.conn.NewAPIChannel()
	if err != nil {
		return opErr("subscribe to interface events", "", nil, err)
	}
	notif := make(chan api.Message, notifBuffer)
	sub, err := ch.SubscribeNotification(notif, &interfaces.SwInterfaceEvent{})
	if err != nil {
		ch.Close()
		return opErr("subscribe to interface events", "", nil, err)
	}
	rctx, cancel := c.reqCtx(ctx, 1)
	defer cancel()
	if _, err := s.ifc.WantInterfaceEvents(rctx, &interfaces.WantInterfaceEvents{EnableDisable: 1, PID: uint32(os.Getpid())}); err != nil {
		_ = sub.Unsubscribe()
		ch.Close()
		return vppErr("want interface events", "", err)
	}
	go func() {
		defer ch.Close()
		defer func() { _ = sub.Unsubscribe() }()
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-notif:
				if ev, ok := m.(*interfaces.SwInterfaceEvent); ok {
					c.noteInterfaceEvent(s, ev)
				}
			}
		}
	}()
	return nil
}

// noteInterfaceEvent records an event of session s. s.generation is read
// under mu, where it is written: an event may come before s is published.
func (c *Client) noteInterfaceEvent(s *session, m *interfaces.SwInterfaceEvent) {
	idx := uint32(m.SwIfIndex)
	c.mu.Lock()
	gen := s.generation
	prev, had := c.ifev.pending[idx]
	c.ifev.pending[idx] = InterfaceEvent{
		SwIfIndex:  idx,
		AdminUp:    m.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0,
		LinkUp:     m.Flags&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0,
		Deleted:    m.Deleted || (had && prev.Generation == gen && prev.Deleted),
		Generation: gen,
	}
	c.mu.Unlock()
	select {
	case c.ifev.ready <- struct{}{}:
	default:
	}
}
