package cni

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/hashicorp/go-multierror"

	"github.com/uspace-io/uspace/deviceinfo"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store/lite"
)

// cmdDel is idempotent: it succeeds when nothing exists, when only part of
// the attachment is in etcd, when IPAM was already released and when the
// netns is gone (it never opens the netns). It removes the attachment's
// intents in one transaction, then, side by side, waits (bounded by
// delTimeout) for the host agent to remove the status and releases IPAM.
//
// Choices: an unreachable etcd fails DEL (the runtime retries; releasing
// the IPs while the intents may still hold them would hand them out twice).
// An agent that does not confirm within delTimeout does not fail DEL on
// its own: the intents are gone and the agent, a level-triggered
// reconciler, removes the interface when it runs again; failing would only
// block pod removal on a node whose agent is down. Nor does it hold up
// IPAM: the addresses are free once no intent holds them.
func (p *plugin) cmdDel(args *skel.CmdArgs) error {
	inv, err := p.setup("DEL", args, false)
	if err != nil {
		return err
	}
	defer inv.closeLog()
	start := p.now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(inv.us.AddTimeout))
	defer cancel()
	if err := validAttachment(inv.att); err != nil {
		// ADD refuses such names before IPAM or etcd: nothing can exist.
		inv.log.Info("nothing to delete: the attachment could never have been added", "reason", err)
		return nil
	}
	st, err := inv.connect(ctx)
	if err != nil {
		inv.log.Error("DEL failed", "err", err)
		return err
	}
	defer st.Close()

	d, err := deleteAttachment(ctx, st, inv.att)
	if err != nil {
		inv.log.Error("DEL failed; IPAM not released while the intents may hold its addresses", "err", err)
		return err
	}
	if d.Removed {
		inv.log.Info("intents deleted", "revision", d.Rev)
	} else {
		inv.log.Info("no intents to delete")
	}
	if path := inv.conf.RuntimeConfig.CNIDeviceInfoFile; path != "" {
		if err := deviceinfo.Remove(path); err != nil {
			inv.log.Error("DEL failed", "err", err)
			return types.NewError(types.ErrIOFailure, "removing the device-info file (runtimeConfig.CNIDeviceInfoFile)", err.Error())
		}
	}
	if err := p.afterDelete(ctx, st, inv, d); err != nil {
		inv.log.Error("DEL failed", "err", err)
		return err
	}
	inv.log.Info("DEL done", "took", p.now().Sub(start))
	return nil
}

// afterDelete runs the two steps that follow the intents' removal, side
// by side, each whatever the other does: waiting for the host agent to
// confirm the removal (when there was one: d) and releasing IPAM. A
// failed release fails DEL, its message listing every step that failed;
// an unconfirmed removal alone is only logged (see cmdDel).
func (p *plugin) afterDelete(ctx context.Context, st *lite.Client, inv *invocation, d deleted) error {
	var (
		g                    multierror.Group
		unconfirmed, ipamErr error
	)
	if d.Removed {
		g.Go(func() error {
			unconfirmed = p.waitRemoved(ctx, st, inv, d)
			return unconfirmed
		})
	}
	if typ := inv.conf.IPAM.Type; typ != "" {
		g.Go(func() error {
			if err := invoke.DelegateDel(ctx, typ, inv.args.StdinData, nil); err != nil {
				ipamErr = fmt.Errorf("releasing IPAM (%s): %w", typ, err)
			}
			return ipamErr
		})
	}
	errs := g.Wait()
	if ipamErr == nil {
		if unconfirmed != nil {
			inv.log.Warn("the interface is removed when the host agent reconciles", "err", unconfirmed)
		}
		return nil
	}
	code := uint(types.ErrInternal)
	var te *types.Error
	if errors.As(ipamErr, &te) {
		code = te.Code
	}
	errs.ErrorFormat = problemList
	return types.NewError(code, "DEL: "+errs.Error(), "")
}

// validAttachment checks the names that become key segments.
func validAttachment(att Attachment) error {
	errs := multierror.Append(nil,
		schema.ValidateHost("uspace.host", att.Host),
		schema.ValidateContainerID("CNI_CONTAINERID", att.ContainerID),
		schema.ValidateIfName("CNI_IFNAME", att.IfName))
	if errs.ErrorOrNil() != nil {
		return invalidConfig(errs)
	}
	return nil
}

// waitRemoved waits, bounded by delTimeout, for the host agent to delete
// the status of the removed interface, from the state the delete read
// (d). Without a registered agent, or a status to remove, there is
// nothing to wait for.
func (p *plugin) waitRemoved(ctx context.Context, st *lite.Client, inv *invocation, d deleted) error {
	if !d.Agent {
		inv.log.Warn("no host agent registered: not waiting for it to remove the interface", "agentKey", schema.AgentKey(inv.att.Host))
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, time.Duration(inv.us.DelTimeout))
	defer cancel()
	statusKey := schema.StatusKey(inv.att.HostKey())
	from, ok := unreportedStatus(wctx, st, statusKey, d.Status)
	if !ok {
		return nil
	}
	if _, err := st.WaitFor(wctx, statusKey, from, func(kv *lite.KV) (bool, error) { return kv == nil, nil }); err != nil {
		return fmt.Errorf("host agent did not confirm the removal (%s gone) within %v: %w", statusKey, time.Duration(inv.us.DelTimeout), err)
	}
	return nil
}

// unreportedGrace is how long DEL watches for a status that was absent
// when the intents went: the agent may have seen the intent before the
// delete without having written its status yet (it was starting, say),
// and will write it before it sees the delete.
const unreportedGrace = time.Second

// unreportedStatus is where waiting for the status's removal starts: at
// the delete's state when it held a status; else, when one appears within
// unreportedGrace, at that one. ok is false when none appeared: there is
// nothing to wait for.
func unreportedStatus(ctx context.Context, st *lite.Client, statusKey string, at lite.State) (from lite.State, ok bool) {
	if at.KV != nil {
		return at, true
	}
	gctx, cancel := context.WithTimeout(ctx, unreportedGrace)
	defer cancel()
	kv, _ := st.WaitFor(gctx, statusKey, at, func(kv *lite.KV) (bool, error) { return kv != nil, nil })
	if kv == nil {
		return lite.State{}, false
	}
	return lite.State{KV: kv, Revision: kv.ModRevision}, true
}
