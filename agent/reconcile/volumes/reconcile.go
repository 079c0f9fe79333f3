package volumes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/agent/statuswriter"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Reconciler converges the volumes of one host into its SPDK and its
// vhost-user directories.
type Reconciler struct {
	SPDK   *spdk.Client
	Status *statuswriter.Writer
	// Roots are the vhost-user roots (--volume-root) the agent may create
	// and delete volume files under.
	Roots []string
	Log   *slog.Logger

	// Desired lists the volume intents; Enqueue queues one key and
	// EnqueueAll every one: how the SPDK watch gets volumes reconciled.
	Desired    func() []store.KV
	Enqueue    func(key string)
	EnqueueAll func()
}

// refusal is an error that retrying cannot cure: a precondition SPDK was
// asked about does not hold (a name taken by a hand-made object, nothing to
// adopt, memory exhausted), or a file in the way. The status reports it and
// the volume is not retried until its intent or SPDK changes.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func refuse(format string, a ...any) error { return &refusal{fmt.Sprintf(format, a...)} }

// Reconcile is a controller.ReconcileFunc: it makes SPDK and the
// vhost-user directory match one volume intent (adopt or create the
// controller, and the bdev with -o size; check the socket; make the device
// node). Without an intent it undoes what the last status recorded as
// owned.
func (r *Reconciler) Reconcile(ctx context.Context, key string, kv *store.KV) error {
	k, err := schema.ParseKey(key)
	if err != nil {
		return nil // not ours to handle; ParseKey already filtered the watch
	}
	sk := schema.StatusKey(k)
	prev := r.status(sk)
	if kv == nil {
		if prev != nil {
			if err := r.teardown(ctx, key, prev); err != nil {
				return fmt.Errorf("remove volume %s: %w", k.Volume, err)
			}
		}
		return r.Status.Delete(ctx, sk)
	}
	v, err := schema.DecodeAs[schema.Volume](kv.Value)
	if err == nil {
		err = r.checkVolumeRoot(v.Root)
	}
	if err != nil {
		return r.badValue(ctx, sk, prev, kv.ModRevision, err)
	}
	st := &schema.VolumeStatus{
		ObservedRevision: kv.ModRevision,
		SocketPath:       v.SocketPath(),
		DevicePath:       v.DevicePath(),
		Major:            v.Type.Major(),
		Minor:            v.Minor,
		Controller:       v.Device,
	}
	if prev != nil && !sameVolumeHandles(prev, st, v) {
		// The intent now names other objects: the old ones go first, so a
		// renamed device never leaves its old node behind.
		if err := r.teardown(ctx, key, prev); err != nil {
			return fmt.Errorf("replace volume %s: %w", v.Name, err)
		}
		prev = nil
	}
	// What the agent owns stays owned, whatever this pass decides: a later
	// remove must still clean it up.
	if prev != nil {
		st.OwnsController, st.ControllerID, st.OwnsBdev, st.Bdev, st.Adopted = prev.OwnsController, prev.ControllerID, prev.OwnsBdev, prev.Bdev, prev.Adopted
	}
	p, err := r.plan(ctx, key, v, prev)
	if p != nil && p.disown {
		st.OwnsController, st.ControllerID = false, ""
	}
	if err != nil {
		return r.failed(ctx, sk, st, err)
	}
	st.Bdev, st.Adopted = p.bdev, p.adopted
	if err := r.apply(ctx, key, sk, v, p, st); err != nil {
		return r.failed(ctx, sk, st, err)
	}
	st.Ready = true
	return r.Status.Put(ctx, sk, st)
}

// badValue reports an intent value retrying cannot fix and waits for a new
// one. What the last status recorded stays recorded: it is what a remove
// must still undo. The error is terminal, whatever the last one was.
func (r *Reconciler) badValue(ctx context.Context, sk string, prev *schema.VolumeStatus, rev int64, err error) error {
	failed := schema.VolumeStatus{}
	if prev != nil {
		failed = *prev
	}
	failed.ObservedRevision, failed.Ready, failed.Error, failed.Retrying = rev, false, err.Error(), false
	return r.Status.Put(ctx, sk, &failed)
}

// failed reports err in the status. A refusal is final until the intent or
// SPDK changes (a mount, the drift check): it is not retried.
func (r *Reconciler) failed(ctx context.Context, sk string, st *schema.VolumeStatus, err error) error {
	st.Ready = false
	// A refusal is terminal; SPDK unreachable or slow is worth waiting on.
	st.Error, st.Retrying = err.Error(), store.Classify(err) == store.Transient
	if werr := r.Status.Put(ctx, sk, st); werr != nil {
		return errors.Join(err, werr)
	}
	var ref *refusal
	if errors.As(err, &ref) {
		r.Log.Info("volume refused", "status", sk, "reason", err)
		return nil
	}
	return err
}

// sameVolumeHandles reports whether the status prev was written for the
// same device, node and bdev as the intent v asks for now.
func sameVolumeHandles(prev, st *schema.VolumeStatus, v *schema.Volume) bool {
	if prev.Controller != st.Controller || prev.DevicePath != st.DevicePath || prev.SocketPath != st.SocketPath ||
		prev.Major != st.Major || prev.Minor != st.Minor {
		return false
	}
	// An owned bdev is the one the intent's -o size asked for.
	return !prev.OwnsBdev || (v.Malloc != nil && prev.Bdev == v.Bdev)
}

// status is the volume status last put or loaded at sk, nil if none.
func (r *Reconciler) status(sk string) *schema.VolumeStatus {
	b, ok := r.Status.Get(sk)
	if !ok || b == nil {
		return nil
	}
	st, err := schema.DecodeAs[schema.VolumeStatus](b)
	if err != nil {
		return nil
	}
	return st
}

// checkVolumeRoot refuses a volume whose root is not, or does not lie in, a
// root the agent was configured with (--volume-root): the agent creates
// and deletes files there. It is the check of the value; every file call
// also resolves its path inside the root it opened (files.go), so that a
// symlink cannot lead it elsewhere.
func (r *Reconciler) checkVolumeRoot(root string) error {
	for _, rt := range r.Roots {
		if root == rt {
			return nil
		}
	}
	if err := schema.UnderRoot("root", root, r.Roots); err != nil {
		return fmt.Errorf("%w: start the host agent with --volume-root %s to serve it", err, root)
	}
	return nil
}
