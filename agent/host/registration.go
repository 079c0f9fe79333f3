package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/uspace-io/uspace/agent/statedir"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// lockState takes this host's record in --state-dir; nil without one.
func (a *Agent) lockState() (*statedir.Dir, error) {
	if a.cfg.StateDir == "" {
		return nil, nil
	}
	d, err := statedir.Lock(a.cfg.StateDir, a.cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("host agent %s: %w", a.cfg.Host, err)
	}
	return d, nil
}

// registerOptions resume the lease state recorded and record each new
// one: an agent that restarts within the lease's TTL carries on under the
// same lease, so the memberships bound to it never go and peers keep
// their tunnels to this host.
func (a *Agent) registerOptions(state *statedir.Dir) (store.RegisterOptions, error) {
	opts := store.RegisterOptions{TTL: a.cfg.LeaseTTL}
	if state == nil {
		return opts, nil
	}
	lease, err := state.Lease()
	if err != nil {
		return opts, fmt.Errorf("host agent %s: %w", a.cfg.Host, err)
	}
	opts.Resume, opts.OnLease = lease, state.SaveLease
	return opts, nil
}

// Decommission takes host out of service for good, run on the host with
// its agent stopped: it revokes the registration lease the agent
// recorded in stateDir, so that the host's registration and memberships
// go at once (peers remove their tunnels to it) rather than when the
// lease expires, and forgets the record. A running agent (the record's
// lock is held) or a live agent elsewhere holding the host's
// registration is refused. It says what it did.
func Decommission(ctx context.Context, st *store.Client, host, stateDir string) (string, error) {
	d, err := statedir.Lock(stateDir, host)
	if err != nil {
		return "", fmt.Errorf("decommission host %s: %w", host, err)
	}
	defer d.Close()
	lease, err := d.Lease()
	if err != nil {
		return "", fmt.Errorf("decommission host %s: %w", host, err)
	}
	revoked, err := st.Resign(ctx, schema.AgentKey(host), lease)
	if errors.As(err, new(*store.HeldError)) {
		return "", fmt.Errorf("decommission host %s: %w", host, registrationError(host, err))
	}
	if err != nil {
		return "", fmt.Errorf("decommission host %s: %w", host, err)
	}
	if err := d.ForgetLease(); err != nil {
		return "", fmt.Errorf("decommission host %s: %w", host, err)
	}
	if !revoked {
		return fmt.Sprintf("host %s: no live registration lease recorded in %s; nothing left to revoke", host, stateDir), nil
	}
	return fmt.Sprintf("host %s decommissioned: lease %x revoked, its registration and network memberships removed", host, lease), nil
}
