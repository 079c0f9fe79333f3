// Package ifsync converges one interface intent into a VPP and reports the
// outcome as its status: the reconcile step the host and the container
// agent share, each with its own way of turning an intent into a spec.
package ifsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/uspace-io/uspace/agent/controller"
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

// SpecFunc turns an intent value into the interface to converge.
type SpecFunc func(owner string, value []byte) (vppstate.Spec, error)

// Reconciler converges the interfaces of one controller into one VPP.
type Reconciler struct {
	VS     *vppstate.Cache
	Status *controller.StatusWriter
	Spec   SpecFunc
	// Desired lists the desired keys and values, for the sweep.
	Desired func() []store.KV
	// Log receives the sweep's refusals.
	Log *slog.Logger

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

// Transient reports an error the agent retries on its own without a
// change of intent: the dataplane is unreachable, restarting or too slow
// to answer, or the connection broke under a call. Other errors (VPP
// refused the request, a directory is missing) are terminal for the
// intent's revision.
func Transient(err error) bool {
	var ne *net.OpError
	return errors.Is(err, vpp.ErrNotConnected) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

// Reconcile is a controller.ReconcileFunc.
func (r *Reconciler) Reconcile(ctx context.Context, key string, kv *store.KV) error {
	if key == SweepKey {
		return r.sweep(ctx)
	}
	k, err := schema.ParseKey(key)
	if err != nil {
		return nil // the watch only delivers v1 keys; nothing to do
	}
	sk := schema.StatusKey(k)
	var spec vppstate.Spec
	if kv != nil {
		if spec, err = r.Spec(vppstate.Owner(key), kv.Value); err != nil {
			// Retrying cannot fix a bad value; report it and wait for a new one.
			return r.report(ctx, sk, kv.ModRevision, 0, spec, err, false)
		}
	}
	vs, err := r.VS.Get(ctx)
	if err != nil {
		if kv != nil {
			return errors.Join(err, r.report(ctx, sk, kv.ModRevision, 0, spec, err, r.retrying(err)))
		}
		return err
	}
	if kv == nil {
		if err := vs.Remove(ctx, vppstate.Owner(key)); err != nil {
			return r.VS.Failed(fmt.Errorf("remove interface %s: %w", k.Interface, err))
		}
		return r.Status.Delete(ctx, sk)
	}
	idx, err := vs.Ensure(ctx, spec)
	if err != nil {
		err = r.VS.Failed(fmt.Errorf("apply interface %s: %w", k.Interface, err))
		return errors.Join(err, r.report(ctx, sk, kv.ModRevision, idx, spec, err, r.retrying(err)))
	}
	return r.report(ctx, sk, kv.ModRevision, idx, spec, nil, false)
}

// retrying says whether a failure to apply is transient: by its kind, or
// because VPP is gone now (a call cut short by the outage).
func (r *Reconciler) retrying(err error) bool { return Transient(err) || !r.VS.Connected() }

func (r *Reconciler) report(ctx context.Context, sk string, rev int64, idx uint32, spec vppstate.Spec, applyErr error, retrying bool) error {
	st := &schema.InterfaceStatus{ObservedRevision: rev, SwIfIndex: idx, Ready: applyErr == nil, Bridge: spec.Bridge}
	switch {
	case spec.Memif != nil:
		st.SocketPath = spec.Memif.SocketPath
	case spec.Vhost != nil:
		st.SocketPath = spec.Vhost.SocketPath
	}
	if applyErr != nil {
		st.Error = applyErr.Error()
		st.Retrying = retrying
	}
	return r.Status.Put(ctx, sk, st)
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
		if spec, err := r.Spec(owners[i], kv.Value); err == nil {
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
