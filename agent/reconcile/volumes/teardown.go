package volumes

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-multierror"

	"github.com/uspace-io/uspace/schema"
)

// teardown undoes what a status recorded: the device node (if it is still
// the block node the volume had), the socket symlink, and only the SPDK
// objects the status records as owned and SPDK still shows as the ones
// uspace made. The steps are independent: each runs whatever the others
// did, each tolerates what is already gone, and every failure is reported.
func (r *Reconciler) teardown(ctx context.Context, key string, st *schema.VolumeStatus) error {
	var errs *multierror.Error
	errs = multierror.Append(errs, r.removeNode(st), r.removeSocketLink(st))
	if st.OwnsController && st.Controller != "" {
		errs = multierror.Append(errs, r.deleteOwnedController(ctx, st))
	}
	if st.OwnsBdev && st.Bdev != "" {
		errs = multierror.Append(errs, r.deleteOwnedBdev(ctx, key, st.Bdev))
	}
	return errs.ErrorOrNil()
}

func (r *Reconciler) deleteOwnedController(ctx context.Context, st *schema.VolumeStatus) error {
	ctrl, err := r.getController(ctx, st.Controller)
	if err != nil || ctrl == nil {
		return err
	}
	ours, err := recognise(st, ctrl)
	if err != nil {
		return err
	}
	if !ours {
		// Made by hand after ours went (or instead of it): not ours to delete.
		r.Log.Warn("not deleting controller: it is not the one uspace made", "ctrlr", st.Controller, "socket", ctrl.Socket)
		return nil
	}
	if err := r.SPDK.DeleteController(ctx, st.Controller); err != nil {
		return fmt.Errorf("delete controller %s: %w", st.Controller, err)
	}
	return nil
}

func (r *Reconciler) deleteOwnedBdev(ctx context.Context, key, name string) error {
	b, err := r.getBdev(ctx, name)
	if err != nil || b == nil {
		return err
	}
	if !ownedBdev(key, b) {
		// Made by hand after ours went: not ours to delete.
		r.Log.Warn("not deleting bdev: it is not the one uspace made", "bdev", name, "uuid", b.UUID)
		return nil
	}
	if err := r.SPDK.DeleteMallocBdev(ctx, name); err != nil {
		return fmt.Errorf("delete bdev %s: %w", name, err)
	}
	return nil
}
