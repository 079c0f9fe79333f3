package interfaces

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/uspace-io/uspace/agent/statuswriter"
	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// SweepKey is queued ahead of the interface keys; its reconcile reloads
// VPP's state, removes what uspace owns but no intent wants, and creates
// in bulk what intents want but VPP lacks, so that the interface keys
// after it mostly find their work done. It runs on the same worker as the
// interfaces, so it never races one of them.
const SweepKey = "sweep"

// DriftKey is queued when VPP reports interface events; its reconcile
// finds the interfaces someone else deleted or set admin down, records
// that in their statuses and queues their keys, whose reconciles repair
// them.
const DriftKey = "drift"

// SpecFunc turns the value at key k into the interface to converge. It
// decodes only the kind of value k holds (schema.DecodeAt): a value is
// trusted for where it is, never for what it says it is. An error wrapped
// in Withdrawn also takes the key's interface out of VPP.
type SpecFunc func(k schema.Key, owner string, value []byte) (vppstate.Spec, error)

// Withdrawn marks err, returned by a SpecFunc, as one after which the
// key's interface must not stay in VPP: a tunnel to a peer that disagrees
// on the VNI, or whose underlay address is not its own to announce, would
// keep carrying the network's frames to the wrong place.
func Withdrawn(err error) error { return &withdrawn{err} }

type withdrawn struct{ error }

func (w *withdrawn) Unwrap() error { return w.error }

// Reconciler converges the interfaces of one controller into one VPP.
type Reconciler struct {
	VS     *vppstate.Cache
	Status *statuswriter.Writer
	Spec   SpecFunc
	// Desired lists the desired keys and values, for the sweep.
	Desired func() []store.KV
	// Log receives the sweep's refusals.
	Log *slog.Logger

	// Enqueue queues one key and EnqueueAll every desired key: how a
	// drift gets its interfaces reconciled.
	Enqueue    func(key string)
	EnqueueAll func()

	// drifted holds the drifts found and not yet repaired, by owner: a
	// repair that fails says what it was repairing. Only the one
	// reconcile worker touches it.
	drifted map[string]vppstate.Drift

	mu      sync.Mutex
	refused []string // owners the last sweep refused to remove
}

// Refused lists the owners of the tagged interfaces the last sweep left in
// VPP because nothing proved them this agent's (see vppstate.Cache.Sweep).
func (r *Reconciler) Refused() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

// Reconcile is a controller.ReconcileFunc.
func (r *Reconciler) Reconcile(ctx context.Context, key string, kv *store.KV) error {
	switch key {
	case SweepKey:
		return r.sweep(ctx)
	case DriftKey:
		return r.drift(ctx)
	}
	k, err := schema.ParseKey(key)
	if err != nil {
		return nil // the watch only delivers v1 keys; nothing to do
	}
	sk := schema.StatusKey(k)
	var spec vppstate.Spec
	if kv != nil {
		if spec, err = r.Spec(k, vppstate.Owner(key), kv.Value); err != nil {
			return r.refuse(ctx, k, sk, kv.ModRevision, err)
		}
	}
	vs, err := r.VS.Get(ctx)
	if err != nil {
		if kv != nil {
			return errors.Join(err, r.report(ctx, sk, kv.ModRevision, vpp.Interface{}, spec, err, r.retrying(err)))
		}
		return err
	}
	if kv == nil {
		if err := vs.Remove(ctx, vppstate.Owner(key)); err != nil {
			return r.VS.Failed(fmt.Errorf("remove %s: %w", describe(k), err))
		}
		return r.Status.Delete(ctx, sk)
	}
	var idx uint32
	err = r.claim(ctx, vs, sk, kv.ModRevision, spec)
	if err == nil && k.Kind == schema.KindTunnelKey && vs.Creates(spec) {
		r.uplinkFirst(ctx, vs)
	}
	if err == nil {
		idx, err = vs.Ensure(ctx, spec)
	}
	itf, _ := vs.Lookup(spec.Owner)
	d, drifted := r.drifted[spec.Owner]
	if err != nil {
		if drifted {
			err = fmt.Errorf("repair after %s: %w", d, err)
		}
		err = r.VS.Failed(fmt.Errorf("apply %s: %w", describe(k), err))
		return errors.Join(err, r.report(ctx, sk, kv.ModRevision, vpp.Interface{SwIfIndex: idx, Name: itf.Name}, spec, err, r.retrying(err)))
	}
	delete(r.drifted, spec.Owner)
	return r.report(ctx, sk, kv.ModRevision, itf, spec, nil, false)
}

// refuse reports a value the agent cannot apply: retrying cannot fix it,
// so the key waits for a new one. What the key has in VPP stays as it is,
// unless err is Withdrawn.
func (r *Reconciler) refuse(ctx context.Context, k schema.Key, sk string, rev int64, err error) error {
	var w *withdrawn
	if errors.As(err, &w) {
		vs, verr := r.VS.Get(ctx)
		if verr == nil {
			if verr = vs.Remove(ctx, vppstate.Owner(k.String())); verr != nil {
				verr = r.VS.Failed(fmt.Errorf("remove %s: %w", describe(k), verr))
			}
		}
		if verr != nil {
			return errors.Join(verr, r.report(ctx, sk, rev, vpp.Interface{}, vppstate.Spec{}, fmt.Errorf("%w; %w", err, verr), r.retrying(verr)))
		}
	}
	return r.report(ctx, sk, rev, vpp.Interface{}, vppstate.Spec{}, err, false)
}

// claim prepares spec's create when VPP knows the object by what it is
// rather than by uspace's tag (vppstate.Spec.Identity: an af_packet's Linux
// interface, a tunnel's endpoints and VNI), so that only what this agent
// made is ever taken for its own. Before such a create it records, durably,
// that it is creating it (InterfaceStatus.Creating); an untagged object of
// that identity found later is adopted only on that record, as what a
// crash between create and tag left. Whatever else holds the identity is
// left to Ensure, which refuses it.
func (r *Reconciler) claim(ctx context.Context, vs *vppstate.State, sk string, rev int64, spec vppstate.Spec) error {
	id := spec.Identity()
	if id == "" || !vs.Creates(spec) {
		return nil
	}
	h, held := vs.Holder(spec)
	if !held {
		if err := r.Status.Put(ctx, sk, &schema.InterfaceStatus{ObservedRevision: rev, Creating: id}); err != nil {
			return err
		}
		// The one worker must not hang on an etcd that does not answer.
		fctx, cancel := context.WithTimeout(ctx, claimTimeout)
		defer cancel()
		if err := r.Status.Written(fctx, sk); err != nil {
			return fmt.Errorf("record the create of %s: %w", id, err)
		}
		return nil
	}
	if h.Tag == "" && r.creating(sk) == id {
		r.Log.Warn("adopting what a crash left between create and tag", "object", id, "swIfIndex", h.SwIfIndex)
		return vs.Adopt(ctx, spec)
	}
	return nil
}

// uplinkFirst converges this host's uplink, address included, ahead of a
// tunnel about to be created: VPP 25.02 resolves a new tunnel's peer with
// the source address the uplink has at that moment, and one created
// before the uplink's address asks for it with the subnet's network
// address as sender (192.168.78.0), an ARP request peers learn nothing
// from. What keeps the uplink from converging (an operator's af_packet on
// its Linux interface, say) is for its own reconcile to report, as it does
// when it finds the uplink converged: the tunnel goes on as it would alone.
func (r *Reconciler) uplinkFirst(ctx context.Context, vs *vppstate.State) {
	for _, kv := range r.Desired() {
		k, err := schema.ParseKey(kv.Key)
		if err != nil || k.Kind != schema.KindUplinkKey {
			continue
		}
		spec, err := r.Spec(k, vppstate.Owner(kv.Key), kv.Value)
		if err == nil && r.claim(ctx, vs, schema.StatusKey(k), kv.ModRevision, spec) == nil {
			_, _ = vs.Ensure(ctx, spec)
		}
	}
}

// claimTimeout bounds the wait for a create record to reach etcd; past it
// the reconcile fails and is retried.
const claimTimeout = 5 * time.Second

// creating is the create the status at sk records as under way.
func (r *Reconciler) creating(sk string) string {
	b, ok := r.Status.Get(sk)
	if !ok {
		return ""
	}
	st, err := schema.DecodeAs[schema.InterfaceStatus](b)
	if err != nil {
		return ""
	}
	return st.Creating
}

// retrying says whether the agent retries err on its own, without a change
// of intent (the status's `retrying`): it is transient (store.Classify:
// VPP not connected, a deadline, a broken connection), or VPP went away
// meanwhile. Anything else (VPP refused the request, a directory is
// missing) is final for the intent's revision.
func (r *Reconciler) retrying(err error) bool {
	return store.Classify(err) == store.Transient || !r.VS.Connected()
}

// drift handles VPP's interface events: each interface of an intent that
// someone else deleted or set admin down gets a status saying so (so that
// CNI CHECK fails until it is repaired) and its key queued for repair.
func (r *Reconciler) drift(ctx context.Context) error {
	drifts, known := r.VS.Drifted(ctx)
	if !known {
		return r.enqueueMissing(ctx)
	}
	if len(drifts) == 0 {
		return nil
	}
	if r.drifted == nil {
		r.drifted = map[string]vppstate.Drift{}
	}
	for _, d := range drifts {
		r.drifted[d.Owner] = d
	}
	var errs []error
	desired := map[string]bool{}
	for _, kv := range r.Desired() {
		owner := vppstate.Owner(kv.Key)
		desired[owner] = true
		d, ok := r.drifted[owner]
		if !ok {
			continue
		}
		k, err := schema.ParseKey(kv.Key)
		if err != nil {
			continue
		}
		spec, err := r.Spec(k, owner, kv.Value)
		if err != nil {
			continue // its own reconcile reports the bad value
		}
		errs = append(errs, r.report(ctx, schema.StatusKey(k), kv.ModRevision, vpp.Interface{SwIfIndex: d.SwIfIndex, Name: d.Name}, spec,
			fmt.Errorf("%s; repairing it", d), true))
		r.Enqueue(kv.Key)
	}
	// An interface no intent wants is the sweep's business, not a repair.
	for owner := range r.drifted {
		if !desired[owner] {
			delete(r.drifted, owner)
		}
	}
	return errors.Join(errs...)
}

// report writes the status: itf is the interface as the agent's view of
// VPP holds it (zero when there is none).
func (r *Reconciler) report(ctx context.Context, sk string, rev int64, itf vpp.Interface, spec vppstate.Spec, applyErr error, retrying bool) error {
	st := &schema.InterfaceStatus{ObservedRevision: rev, SwIfIndex: itf.SwIfIndex, InterfaceName: itf.Name, Ready: applyErr == nil, Bridge: spec.Bridge}
	switch {
	case spec.Memif != nil:
		st.SocketPath = spec.Memif.SocketPath
	case spec.Vhost != nil:
		st.SocketPath = spec.Vhost.SocketPath
	}
	if applyErr != nil {
		st.Error = applyErr.Error()
		st.Retrying = retrying
		// A create that failed may have made the object all the same (a
		// reply lost, the tag refused): its record stays, unless VPP
		// showed the object to be someone else's.
		if id := spec.Identity(); id != "" && !errors.Is(applyErr, vpp.ErrConflict) && r.creating(sk) == id {
			st.Creating = id
		}
	} else {
		st.MTU = spec.MTU
	}
	return r.Status.Put(ctx, sk, st)
}

// enqueueMissing queues every desired key whose interface VPP lacks or
// holds admin down: what drift events that could not be told apart may
// have been about, at the cost of one hash per key rather than a
// reconcile of every key.
func (r *Reconciler) enqueueMissing(ctx context.Context) error {
	vs, err := r.VS.Get(ctx)
	if err != nil {
		r.EnqueueAll()
		return nil
	}
	for _, kv := range r.Desired() {
		if itf, ok := vs.Lookup(vppstate.Owner(kv.Key)); !ok || !itf.AdminUp {
			r.Enqueue(kv.Key)
		}
	}
	return nil
}

func (r *Reconciler) sweep(ctx context.Context) error {
	desired := r.Desired()
	owners := make([]string, len(desired))
	wanted := make(map[string]bool, len(desired))
	for i, kv := range desired {
		owners[i] = vppstate.Owner(kv.Key)
		wanted[owners[i]] = true
	}
	vs, refused, err := r.VS.Sweep(ctx, wanted, r.proven())
	r.mu.Lock()
	r.refused = refused
	r.mu.Unlock()
	if len(refused) > 0 {
		r.Log.Error("refusing to remove uspace-tagged interfaces that nothing of this agent's proves its own: wrong --host, or an empty or other etcd?",
			"interfaces", len(refused), "intents", len(desired), "owners", strings.Join(refused, ","))
	}
	if err != nil {
		return err
	}
	var specs []vppstate.Spec
	for i, kv := range desired {
		if _, ok := vs.Lookup(owners[i]); ok {
			continue
		}
		// A value that does not decode is reported by its own reconcile.
		k, err := schema.ParseKey(kv.Key)
		if err != nil {
			continue
		}
		if spec, err := r.Spec(k, owners[i], kv.Value); err == nil {
			specs = append(specs, spec)
		}
	}
	if err := vs.CreateMissing(ctx, specs); err != nil {
		return r.VS.Failed(fmt.Errorf("create missing interfaces: %w", err))
	}
	return nil
}

// proven lists the owners of the interfaces this agent's statuses record:
// what it applied, whether or not the intent is still there.
func (r *Reconciler) proven() map[string]bool {
	keys := r.Status.Keys()
	owners := make(map[string]bool, len(keys))
	for _, sk := range keys {
		if k, err := schema.ParseKey(sk); err == nil && k.Status {
			owners[vppstate.Owner(k.IntentOf().String())] = true
		}
	}
	return owners
}

// describe names what a key's reconcile converges, for its errors.
func describe(k schema.Key) string {
	switch k.Kind {
	case schema.KindTunnelKey:
		return fmt.Sprintf("VXLAN tunnel of network %s to host %s", k.Network, k.Peer)
	case schema.KindUplinkKey:
		return "uplink"
	}
	return "interface " + k.Interface
}
