package containerstatus

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/uspace-io/uspace/agent/statuswriter"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// DefaultGrace bounds how long a live container agent has to remove its
// own statuses after its container's last DEL.
const DefaultGrace = 5 * time.Second

// Reconciler removes the statuses of container-side interfaces whose
// intents are gone once their container is gone too (its meta deleted, as
// the CNI DEL of its last interface does) and its agent had Grace to
// remove them itself. While the container lives its agent removes its own
// statuses, after taking the interface out of its VPP; a container stopped
// before its interfaces were deleted (the order Docker and Kubernetes use)
// no longer can, and only the host agent holds the right to everything
// under the host's status prefix.
//
// Its keys are container interface and meta keys. One worker runs
// Reconcile; Waiting may be read from anywhere.
type Reconciler struct {
	// St lists a gone container's statuses; Status deletes them.
	St     *store.Client
	Status *statuswriter.Writer
	// Desired returns a key's intent (interface or meta) from the cache
	// of the controller that runs Reconcile; EnqueueAfter queues a key
	// again there.
	Desired      func(key string) (store.KV, bool)
	EnqueueAfter func(key string, d time.Duration)
	// Grace is DefaultGrace when zero.
	Grace time.Duration

	// goneSince is when each deleted container meta was first seen gone,
	// until the container's statuses are removed or it comes back.
	goneSince map[string]time.Time
	waiting   atomic.Int64
}

// Waiting counts the gone containers whose statuses are not removed yet.
func (r *Reconciler) Waiting() int { return int(r.waiting.Load()) }

// Reconcile is a controller.ReconcileFunc.
func (r *Reconciler) Reconcile(ctx context.Context, key string, kv *store.KV) error {
	k, err := schema.ParseKey(key)
	if err != nil {
		return nil // the watch only delivers v1 keys; nothing to do
	}
	meta := schema.ContainerMetaKey(k.Host, k.Container)
	if _, alive := r.Desired(meta); alive || kv != nil {
		// A live container's agent removes its own statuses.
		r.forget(meta)
		return nil
	}
	// Everything of a gone container is done at once, under its meta key:
	// a status left by its agent (its intent gone while this agent was
	// down) leads there too.
	if wait := r.graceLeft(meta); wait > 0 {
		r.EnqueueAfter(meta, wait)
		return nil
	}
	if err := r.removeUnwanted(ctx, k); err != nil {
		return err
	}
	r.forget(meta)
	return nil
}

// removeUnwanted deletes every status of k's container whose intent is
// gone, each independently of the others.
func (r *Reconciler) removeUnwanted(ctx context.Context, k schema.Key) error {
	kvs, _, err := r.St.List(ctx, schema.StatusContainerPrefix(k.Host, k.Container))
	if err != nil {
		return fmt.Errorf("list statuses of container %s: %w", k.Container, err)
	}
	var errs *multierror.Error
	for _, st := range kvs {
		sk, err := schema.ParseKey(st.Key)
		if err != nil {
			continue
		}
		if _, wanted := r.Desired(sk.IntentOf().String()); !wanted {
			errs = multierror.Append(errs, r.Status.DeleteAny(ctx, st.Key))
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		return fmt.Errorf("remove statuses of gone container %s: %w", k.Container, err)
	}
	return nil
}

// graceLeft is what is left of the grace of a container whose meta is
// gone, counted from when this agent first saw it gone.
func (r *Reconciler) graceLeft(meta string) time.Duration {
	if r.goneSince == nil {
		r.goneSince = map[string]time.Time{}
	}
	since, ok := r.goneSince[meta]
	if !ok {
		since = time.Now()
		r.goneSince[meta] = since
		r.waiting.Store(int64(len(r.goneSince)))
	}
	grace := r.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	return max(0, grace-time.Since(since))
}

func (r *Reconciler) forget(meta string) {
	if _, ok := r.goneSince[meta]; ok {
		delete(r.goneSince, meta)
		r.waiting.Store(int64(len(r.goneSince)))
	}
}
