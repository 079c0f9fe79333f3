package cni

import (
	"context"
	"fmt"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store/lite"
)

// cmdDel is idempotent: it succeeds when nothing exists, when only part of
// the attachment is in etcd, when IPAM was already released and when the
// netns is gone (it never opens the netns). It removes the attachment's
// intents in one transaction, waits (bounded by delTimeout) for the host
// agent to remove the status, then releases IPAM.
//
// Choices: an unreachable etcd fails DEL (the runtime retries; releasing
// the IPs while the intents may still hold them would hand them out twice).
// An agent that does not confirm within delTimeout does not fail DEL: the
// intents are gone and the agent, a level-triggered reconciler, removes
// the interface when it runs again; failing would only block pod removal
// on a node whose agent is down.
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
		inv.log.Error("DEL failed", "err", err)
		return err
	}
	if d.Removed {
		inv.log.Info("intents deleted", "revision", d.Rev)
		p.waitRemoved(ctx, st, inv, d)
	} else {
		inv.log.Info("no intents to delete")
	}
	if inv.conf.IPAM.Type != "" {
		if err := invoke.DelegateDel(ctx, inv.conf.IPAM.Type, args.StdinData, nil); err != nil {
			inv.log.Error("IPAM release failed", "ipam", inv.conf.IPAM.Type, "err", err)
			return err
		}
	}
	inv.log.Info("DEL done", "took", p.now().Sub(start))
	return nil
}

// validAttachment checks the names that become key segments.
func validAttachment(att Attachment) error {
	var problems []string
	for _, err := range []error{
		schema.ValidateHost("uspace.host", att.Host),
		schema.ValidateContainerID("CNI_CONTAINERID", att.ContainerID),
		schema.ValidateIfName("CNI_IFNAME", att.IfName),
	} {
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return configErr(problems)
	}
	return nil
}

// waitRemoved waits, bounded, for the host agent to delete the status of
// the removed interface, from the state the delete read (d). It only
// logs: see cmdDel.
func (p *plugin) waitRemoved(ctx context.Context, st *lite.Client, inv *invocation, d deleted) {
	if !d.Agent {
		inv.log.Warn("no host agent registered: not waiting for it to remove the interface", "agentKey", schema.AgentKey(inv.att.Host))
		return
	}
	wctx, cancel := context.WithTimeout(ctx, time.Duration(inv.us.DelTimeout))
	defer cancel()
	statusKey := schema.StatusKey(inv.att.HostKey())
	from, ok := unreportedStatus(wctx, st, statusKey, d.Status)
	if !ok {
		return
	}
	if _, err := st.WaitFor(wctx, statusKey, from, func(kv *lite.KV) (bool, error) { return kv == nil, nil }); err != nil {
		inv.log.Warn(fmt.Sprintf("host agent did not confirm removal within %v; it will remove the interface when it reconciles", time.Duration(inv.us.DelTimeout)),
			"statusKey", statusKey, "err", err)
	}
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
