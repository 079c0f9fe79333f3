package spdk

import "context"

// Idempotent deletes for a reconciler: each is safe to repeat, including
// after a crash halfway through; what is already gone is not an error.
// (Nothing here creates: whether an existing object is the caller's to use
// is the caller's decision, see agent/reconcile/volumes.)

// DeleteMallocBdev deletes the malloc bdev; an absent one is not an error.
func (c *Client) DeleteMallocBdev(ctx context.Context, name string) error {
	if err := c.BdevMallocDelete(ctx, name); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}

// DeleteController deletes a vhost controller of either type, removing a
// SCSI controller's targets first (SPDK refuses to delete a SCSI controller
// that still has targets). An absent controller is not an error.
func (c *Client) DeleteController(ctx context.Context, ctrlr string) error {
	ct, err := c.GetController(ctx, ctrlr)
	if err != nil {
		if IsNotFound(err) {
			return nil
		}
		return err
	}
	for _, t := range ct.BackendSpecific.Scsi {
		err := c.VhostScsiControllerRemoveTarget(ctx, ctrlr, t.ScsiDevNum)
		switch {
		case err == nil, IsBusy(err): // busy: the slot is already empty
		case IsNotFound(err):
			return nil
		default:
			return err
		}
	}
	if err := c.VhostDeleteController(ctx, ctrlr); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}
