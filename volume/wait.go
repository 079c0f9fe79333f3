package volume

import (
	"context"
	"errors"
	"fmt"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

func (d *Driver) waitRemoved(ctx context.Context, name string, rev int64) error {
	wctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	last, err := d.st.WaitFor(wctx, d.statusKey(name), rev, func(kv *store.KV) (bool, error) { return kv == nil, nil })
	if err == nil {
		return nil
	}
	if wctx.Err() == nil || ctx.Err() != nil {
		return err
	}
	msg := fmt.Sprintf("volume %s: intent removed, but the host agent of %s has not torn the device down within %v", name, d.host, d.timeout)
	if last != nil {
		if st, err := schema.DecodeAs[schema.VolumeStatus](last.Value); err == nil && st.Error != "" {
			msg += ": " + st.Error
		}
	}
	return errors.New(msg + d.agentHint(ctx) + "; remove again to wait for it")
}

// agentHint says, for a timeout message, whether a host agent is
// registered at all.
func (d *Driver) agentHint(ctx context.Context) string {
	kv, err := d.st.Get(ctx, schema.AgentKey(d.host))
	switch {
	case err != nil:
		return ""
	case kv == nil:
		return fmt.Sprintf(" (no host agent is registered for host %s: is `uspace-agent host --host %s` running?)", d.host, d.host)
	}
	return ""
}

// waitReady waits for a status that has applied rev and is ready, with
// the rule CNI ADD follows: a terminal error for that revision is the
// user's error at once; a transient one (retrying: SPDK unreachable or
// restarting) is waited through until the timeout, which then says the
// agent was still retrying.
func (d *Driver) waitReady(ctx context.Context, v *schema.Volume, rev int64) error {
	wctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var st *schema.VolumeStatus
	errTerminal := errors.New("terminal status error")
	_, err := d.st.WaitFor(wctx, d.statusKey(v.Name), rev, func(kv *store.KV) (bool, error) {
		if kv == nil {
			return false, nil
		}
		s, err := schema.DecodeAs[schema.VolumeStatus](kv.Value)
		if err != nil {
			return false, err
		}
		st = s
		if s.OutcomeFor(rev) == schema.OutcomeTerminal {
			return false, errTerminal
		}
		return s.OutcomeFor(rev) == schema.OutcomeDone, nil
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errTerminal):
		return d.agentError(v, st)
	case ctx.Err() != nil:
		return err
	case wctx.Err() != nil:
		msg := fmt.Sprintf("volume %s: the host agent of %s has not set up device %s within %v", v.Name, d.host, v.Device, d.timeout)
		if st != nil && st.Error != "" {
			state := "last status"
			if st.Retrying {
				state = "still retrying"
			}
			msg += fmt.Sprintf(" (%s, for revision %d: %s)", state, st.ObservedRevision, st.Error)
		}
		return errors.New(msg + d.agentHint(ctx))
	}
	return err
}

// agentError turns the agent's status error into what a Docker user needs
// to read. The agent's message already names the object and the ways out.
func (d *Driver) agentError(v *schema.Volume, st *schema.VolumeStatus) error {
	return fmt.Errorf("volume %s: host agent of %s could not set up device %s: %s", v.Name, d.host, v.Device, st.Error)
}
