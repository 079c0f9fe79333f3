package vppstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/uspace-io/uspace/agent/vpp"
)

// Cache keeps one State between reconciles and drops it whenever a call
// failed, so the next reconcile reloads rather than trust a stale view. It
// belongs to one reconcile worker.
type Cache struct {
	vpp  *vpp.Client
	root string
	log  *slog.Logger
	s    *State
	gen  uint64 // the VPP connection s was loaded from
	// warm is set by Warm: the next Sweep may use the view as it is.
	warm bool
}

func NewCache(c *vpp.Client, socketRoot string, log *slog.Logger) *Cache {
	return &Cache{vpp: c, root: socketRoot, log: log}
}

// Get returns the cached view, loading it when needed. A view loaded from
// an earlier VPP connection is never trusted: VPP may have restarted
// empty, and keys queued ahead of the sweep would otherwise report ready
// from what the old VPP held.
func (c *Cache) Get(ctx context.Context) (*State, error) {
	gen := c.vpp.Generation()
	if c.s != nil && c.gen == gen {
		return c.s, nil
	}
	c.drop()
	if !c.vpp.Connected() {
		return nil, fmt.Errorf("read VPP state: %w", vpp.ErrNotConnected)
	}
	s, err := Load(ctx, c.vpp, c.root)
	if err != nil {
		return nil, fmt.Errorf("read VPP state: %w", err)
	}
	c.s, c.gen = s, gen
	return s, nil
}

// Connected reports whether VPP is connected right now: a call that failed
// while it is not was cut short by the outage, not refused by VPP.
func (c *Cache) Connected() bool { return c.vpp.Connected() }

// drop forgets the view; the next one reads VPP again (routes included).
func (c *Cache) drop() {
	c.s = nil
}

// Failed drops the view after err and returns err.
func (c *Cache) Failed(err error) error {
	c.drop()
	return err
}

// Warm loads the view ahead of the first sweep, so that VPP's dumps
// overlap with the agent's reads from etcd; that sweep uses it instead of
// loading again. It must not run while a reconcile worker does.
func (c *Cache) Warm(ctx context.Context) error {
	if _, err := c.Get(ctx); err != nil {
		return err
	}
	c.warm = true
	return nil
}

// Sweep reloads VPP's state (unless Warm just loaded it) and removes the
// interfaces uspace owns that no intent wants, then every empty bridge
// domain it created and every unused memif socket filename under the
// socket root: what was deleted while the agent was down, or left by a
// crash between creating an interface and recording it. It returns the
// view it swept and the tagged interfaces it refused to remove.
//
// Only what this agent can tell is its own goes: an owner in proven (the
// owner of an intent this agent has a status for), or any tagged orphan
// once some tagged interface in VPP is wanted or proven (the VPP is
// demonstrably this agent's, so the rest are crash leftovers). A VPP whose
// tagged interfaces match nothing wanted or proven (the agent runs with
// the wrong --host, against an empty or another etcd, or on another VPP)
// loses nothing: those interfaces are refused and left alone.
func (c *Cache) Sweep(ctx context.Context, wanted, proven map[string]bool) (*State, []string, error) {
	if !c.warm {
		c.drop()
	}
	c.warm = false
	s, err := c.Get(ctx)
	if err != nil {
		return nil, nil, err
	}
	var orphans []string
	ours := false
	for _, owner := range s.Owners() {
		if wanted[owner] || proven[owner] {
			ours = true
		}
		if !wanted[owner] {
			orphans = append(orphans, owner)
		}
	}
	var refused []string
	var errs []error
	for _, owner := range orphans {
		if !ours && !proven[owner] {
			refused = append(refused, owner)
			continue
		}
		c.log.Info("removing orphan interface", "owner", owner)
		errs = append(errs, s.Remove(ctx, owner))
	}
	errs = append(errs, s.PruneBridges(ctx), s.PruneSockets(ctx))
	if err := errors.Join(errs...); err != nil {
		return nil, refused, c.Failed(fmt.Errorf("sweep orphans: %w", err))
	}
	return s, refused, nil
}
