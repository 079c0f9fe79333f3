package cni

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/uspace-io/uspace/deviceinfo"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store/lite"
)

// A failed ADD still ends within its timeout: the work gets the timeout
// less a reserve, and the roll-back (deleting intents, saying whether an
// agent is registered, releasing IPAM) runs in the reserve. Each clean-up
// step gets at least a floor even when the reserve is spent, because a
// leaked IP or a half-written intent is worse than an error a moment late.
const (
	maxReserve       = 2 * time.Second
	minCleanupEtcd   = 250 * time.Millisecond
	minCleanupIPAM   = time.Second
	reserveOfTimeout = 4 // the reserve is at most a quarter of the timeout
)

// cleanupCtx is a context for a clean-up step: until the ADD's deadline,
// but at least floor from now.
func cleanupCtx(deadline time.Time, floor time.Duration) (context.Context, context.CancelFunc) {
	return context.WithDeadline(context.Background(), later(deadline, time.Now().Add(floor)))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// agentError is the error the host agent reported in the status.
type agentError struct{ msg string }

func (e *agentError) Error() string { return e.msg }

// cmdAdd: validate, connect, IPAM, write the three intents in one
// transaction, wait for the host agent, return the result. Any failure
// after IPAM rolls back: intents deleted (one transaction), IPAM released.
func (p *plugin) cmdAdd(args *skel.CmdArgs) error {
	inv, err := p.setup("ADD", args, true)
	if err != nil {
		return err
	}
	defer inv.closeLog()
	start := p.now()
	timeout := time.Duration(inv.us.AddTimeout)
	inv.deadline = time.Now().Add(timeout)
	ctx, cancel := context.WithDeadline(context.Background(), inv.deadline.Add(-min(timeout/reserveOfTimeout, maxReserve)))
	defer cancel()
	conf, att := inv.conf, inv.att

	// Everything that can be checked without IPAM is checked before it.
	pre, err := BuildIntents(conf, att, nil, start)
	if err != nil {
		return err
	}
	if err := ns.IsNSorErr(args.Netns); err != nil {
		// The container agent would configure a namespace nobody runs in:
		// fail before anything is reserved or written.
		return types.NewError(types.ErrUnknownContainer,
			fmt.Sprintf("CNI_NETNS %s of container %s is not a network namespace", args.Netns, args.ContainerID), err.Error())
	}
	st, err := inv.connect(ctx)
	if err != nil {
		inv.log.Error("ADD failed", "err", err)
		return err
	}
	defer st.Close()

	// A repeated ADD is answered from the intents in place, before IPAM:
	// an IPAM plugin asked again for the same container ID and ifname
	// refuses (host-local: "duplicate allocation is not allowed"). So with
	// IPAM the attachment is read first, and with a shared socket too (its
	// memif id depends on the host's other interfaces); otherwise the
	// write's own transaction finds out what is there.
	var cur *attachmentState
	if conf.IPAM.Type != "" || sharedSocket(conf) {
		if cur, err = readAttachment(ctx, st, att, sharedSocket(conf)); err != nil {
			err = etcdErr("reading the attachment", err)
			inv.log.Error("ADD failed", "err", err)
			return err
		}
		prior, err := priorAttachment(cur, pre, att, conf.IPAM.Type != "")
		if err != nil {
			return refuseOrFail(inv, err)
		}
		if prior != nil {
			return p.answerRepeat(ctx, st, inv, prior, cur, timeout)
		}
	}
	ipamRes, err := p.runIPAM(ctx, st, inv, timeout)
	if err != nil {
		return err
	}
	in, err := BuildIntents(conf, att, ipamRes, start)
	if err != nil {
		return p.failAdd(inv, st, false, true, err)
	}
	return p.commit(ctx, st, inv, in, ipamRes, cur, timeout, start)
}

// writeDeviceInfo writes the container side's device-info where the
// runtime's CNIDeviceInfoFile capability asks, if it does.
func writeDeviceInfo(conf *NetConf, ci *schema.ContainerInterface) error {
	path := conf.RuntimeConfig.CNIDeviceInfoFile
	if path == "" {
		return nil
	}
	if err := deviceinfo.Write(path, deviceinfo.For(ci)); err != nil {
		return types.NewError(types.ErrIOFailure, "writing the device-info file (runtimeConfig.CNIDeviceInfoFile)", err.Error())
	}
	return nil
}

// sharedSocket: the config names the socket file, which several
// interfaces may then share.
func sharedSocket(conf *NetConf) bool {
	return conf.Host.Memif.Socketfile != "" || conf.Host.Vhost.Socketfile != ""
}

// commit writes the ADD's intents (on the state cur read before, nil if
// none was), waits for the host agent to apply them and prints the
// result; any failure rolls the ADD back.
func (p *plugin) commit(ctx context.Context, st *lite.Client, inv *invocation, in *Intents, ipamRes *types100.Result, cur *attachmentState, timeout time.Duration, start time.Time) error {
	conf, att, args := inv.conf, inv.att, inv.args
	w, err := writeIntents(ctx, st, in, att, sharedSocket(conf), cur)
	if err != nil {
		var ex *errExists
		if errors.As(err, &ex) {
			return refuseOrFail(inv, err)
		}
		// Only a transaction that may have been applied needs undoing;
		// failing before it (etcd gone while reading) wrote nothing.
		return p.failAdd(inv, st, w.Unknown, true, err)
	}
	inv.log.Info("intents written", "revision", w.Rev, "repeat", w.Adopted)

	status, err := p.waitReady(ctx, st, inv, w.Rev, w.Status, timeout)
	if err != nil {
		if w.Adopted {
			// A repeat of an ADD whose intents were already in place (an
			// IPAM that hands the same container ID and ifname its address
			// again lets a repeat get here): they and the address are the
			// earlier ADD's, not this one's to undo.
			inv.log.Error("repeated ADD failed; the earlier ADD's intents stay", "err", err)
			return err
		}
		return p.failAdd(inv, st, true, true, err)
	}
	if err := carryMTU(ctx, st, att, in.Container, w.CtrRev, status); err != nil {
		if w.Adopted {
			inv.log.Error("repeated ADD failed; the earlier ADD's intents stay", "err", err)
			return err
		}
		return p.failAdd(inv, st, true, true, err)
	}
	var dns *types.DNS
	if ipamRes != nil {
		dns = &ipamRes.DNS
	}
	res, err := BuildResult(conf.CNIVersion, in, args.Netns, dns, status)
	if err == nil {
		err = writeDeviceInfo(conf, in.Container)
	}
	if err != nil {
		return p.failAdd(inv, st, true, true, err)
	}
	inv.log.Info("ADD done", "revision", w.Rev, "took", p.now().Sub(start))
	return types.PrintResult(res, conf.CNIVersion)
}

// answerRepeat answers a repeated ADD from the intents in place (prior,
// as read in cur), once the host agent reports them applied.
func (p *plugin) answerRepeat(ctx context.Context, st *lite.Client, inv *invocation, prior *Intents, cur *attachmentState, timeout time.Duration) error {
	rev := cur.host.ModRevision
	inv.log.Info("repeated ADD: the attachment's intents are in place", "revision", rev)
	status, err := p.waitReady(ctx, st, inv, rev, cur.status, timeout)
	if err != nil {
		// The intents and the address are the earlier ADD's, not this
		// one's to undo.
		inv.log.Error("repeated ADD failed; the earlier ADD's intents stay", "err", err)
		return err
	}
	if err := carryMTU(ctx, st, inv.att, prior.Container, cur.ctr.ModRevision, status); err != nil {
		return err
	}
	res, err := BuildResult(inv.conf.CNIVersion, prior, inv.args.Netns, nil, status)
	if err != nil {
		return err
	}
	if err := writeDeviceInfo(inv.conf, prior.Container); err != nil {
		return err
	}
	return types.PrintResult(res, inv.conf.CNIVersion)
}

// runIPAM delegates to the config's IPAM plugin, if any (nil result
// without one); a failure after it may have allocated is rolled back.
func (p *plugin) runIPAM(ctx context.Context, st *lite.Client, inv *invocation, timeout time.Duration) (*types100.Result, error) {
	conf := inv.conf
	if conf.IPAM.Type == "" {
		return nil, nil
	}
	r, err := invoke.DelegateAdd(ctx, conf.IPAM.Type, inv.args.StdinData, nil)
	if err != nil {
		inv.log.Error("IPAM failed", "ipam", conf.IPAM.Type, "err", err)
		if ctx.Err() != nil {
			// Killed at the deadline, maybe after allocating.
			return nil, p.failAdd(inv, st, false, true, fmt.Errorf("IPAM %s did not finish within %v: %w", conf.IPAM.Type, timeout, err))
		}
		return nil, err
	}
	ipamRes, err := ipamResult(r)
	if err != nil {
		return nil, p.failAdd(inv, st, false, true, err)
	}
	return ipamRes, nil
}

// refuseOrFail returns the error of an ADD that found the attachment
// taken: an *errExists (same container ID and ifname, hence the same IPAM
// allocation, but other settings) becomes a CNI error and both are left
// alone; any other error is returned as it is.
func refuseOrFail(inv *invocation, err error) error {
	var ex *errExists
	if errors.As(err, &ex) {
		err = types.NewError(types.ErrInternal, ex.msg, "")
		inv.log.Error("ADD refused", "err", err)
	}
	return err
}

// failAdd undoes a failed ADD and returns its error. It follows the one
// IPAM rule DEL follows too: addresses are released only once no intent
// can still hold them. When deleting the intents fails they stay
// allocated (releasing them would let IPAM hand them out twice); the
// runtime's DEL after the failed ADD removes both.
func (p *plugin) failAdd(inv *invocation, st *lite.Client, intents, ipam bool, cause error) error {
	inv.log.Error("ADD failed, rolling back", "err", cause)
	var errs []error
	if intents {
		ctx, cancel := cleanupCtx(inv.deadline, minCleanupEtcd)
		if _, err := deleteAttachment(ctx, st, inv.att); err != nil {
			errs = append(errs, fmt.Errorf("deleting the intents: %w; IPAM not released while they may hold its addresses", err))
			ipam = false
		}
		cancel()
	}
	if ipam && inv.conf.IPAM.Type != "" {
		ctx, cancel := cleanupCtx(inv.deadline, minCleanupIPAM)
		defer cancel()
		if err := invoke.DelegateDel(ctx, inv.conf.IPAM.Type, inv.args.StdinData, nil); err != nil {
			errs = append(errs, fmt.Errorf("releasing IPAM (%s): %w", inv.conf.IPAM.Type, err))
		}
	}
	if len(errs) == 0 {
		return cause
	}
	err := errors.Join(errs...)
	inv.log.Error("rollback incomplete", "err", err)
	var te *types.Error
	if errors.As(cause, &te) {
		return types.NewError(te.Code, te.Msg, joinDetails(te.Details, "rollback incomplete: "+err.Error()))
	}
	return fmt.Errorf("%w (rollback incomplete: %v)", cause, err)
}

func joinDetails(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// waitReady waits for the host agent's status of this attachment, from
// the state read with the intents (from), to reach rev and be ready. A
// terminal error in that status fails at once; a transient one (retrying:
// VPP not connected, say) is waited through, and the deadline passing
// while the agent retries is CNI's "try again later".
func (p *plugin) waitReady(ctx context.Context, st *lite.Client, inv *invocation, rev int64, from lite.State, timeout time.Duration) (*schema.InterfaceStatus, error) {
	statusKey := schema.StatusKey(inv.att.HostKey())
	var last *schema.InterfaceStatus
	_, err := st.WaitFor(ctx, statusKey, from, func(kv *lite.KV) (bool, error) {
		if kv == nil {
			return false, nil
		}
		s, err := schema.DecodeAs[schema.InterfaceStatus](kv.Value)
		if err != nil {
			return false, nil
		}
		last = s
		if s.OutcomeFor(rev) == schema.OutcomeTerminal {
			return false, &agentError{s.Error}
		}
		return s.OutcomeFor(rev) == schema.OutcomeDone, nil
	})
	if err == nil {
		return last, nil
	}
	var ae *agentError
	if errors.As(err, &ae) {
		return nil, types.NewError(types.ErrInternal, fmt.Sprintf("host agent on %s failed to apply interface %s of container %s: %s",
			inv.att.Host, inv.att.IfName, inv.att.ContainerID, ae.msg), "")
	}
	if ctx.Err() == nil {
		return nil, etcdErr("waiting for the host agent", err)
	}
	if last != nil && last.ObservedRevision >= rev && last.Retrying {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf(
			"host agent on %s was still retrying interface %s of container %s after %v: %s",
			inv.att.Host, inv.att.IfName, inv.att.ContainerID, timeout, last.Error), "")
	}
	// Timed out: say whether an agent is there at all.
	agentKey := schema.AgentKey(inv.att.Host)
	actx, cancel := cleanupCtx(inv.deadline, minCleanupEtcd)
	defer cancel()
	seen := "no status yet"
	if last != nil {
		seen = fmt.Sprintf("last status: observedRevision %d, ready %v", last.ObservedRevision, last.Ready)
	}
	agent, _, gerr := st.Get(actx, agentKey)
	switch {
	case gerr != nil:
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf(
			"host agent on %s did not report %s at revision %d within %v (%s), and etcd is now unreachable: %v",
			inv.att.Host, statusKey, rev, timeout, seen, gerr), "")
	case agent == nil:
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf(
			"host agent on %s did not report %s at revision %d within %v (%s): no agent is registered at %s — is uspace-agent running on this host with --host %s and the same etcd?",
			inv.att.Host, statusKey, rev, timeout, seen, agentKey, inv.att.Host), "")
	}
	return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf(
		"host agent on %s did not report %s at revision %d within %v (%s); the agent is registered at %s but did not apply the interface",
		inv.att.Host, statusKey, rev, timeout, seen, agentKey), "")
}
