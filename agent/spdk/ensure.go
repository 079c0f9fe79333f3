package spdk

import (
	"context"
	"fmt"
)

// Idempotent helpers for a reconciler: each converges one object and is
// safe to repeat, including after a crash halfway through or a race with
// another writer (an "already exists" answer is checked, not trusted).

// EnsureMallocBdev makes sure a malloc bdev called name exists with
// sizeBytes/blockSize blocks of blockSize bytes. An existing bdev with the
// same geometry is fine; a different geometry (or a bdev that is not a
// malloc bdev) is an error wrapping ErrMismatch.
func (c *Client) EnsureMallocBdev(ctx context.Context, name string, sizeBytes uint64, blockSize uint32) (*Bdev, error) {
	if name == "" {
		return nil, fmt.Errorf("bdev: empty name")
	}
	if blockSize == 0 || blockSize%512 != 0 {
		return nil, fmt.Errorf("bdev %q: block size %d is not a positive multiple of 512", name, blockSize)
	}
	if sizeBytes == 0 || sizeBytes%uint64(blockSize) != 0 {
		return nil, fmt.Errorf("bdev %q: size %d is not a positive multiple of the block size %d", name, sizeBytes, blockSize)
	}
	numBlocks := sizeBytes / uint64(blockSize)
	check := func(b *Bdev) (*Bdev, error) {
		if b.ProductName != MallocProductName {
			return nil, fmt.Errorf("bdev %q: %w: it is a %q, not a malloc bdev", name, ErrMismatch, b.ProductName)
		}
		if b.BlockSize != blockSize || b.NumBlocks != numBlocks {
			return nil, fmt.Errorf("bdev %q: %w: it has %d blocks of %d bytes, want %d blocks of %d bytes",
				name, ErrMismatch, b.NumBlocks, b.BlockSize, numBlocks, blockSize)
		}
		return b, nil
	}
	b, err := c.GetBdev(ctx, name)
	if err == nil {
		return check(b)
	}
	if !IsNotFound(err) {
		return nil, err
	}
	if _, err := c.BdevMallocCreate(ctx, MallocBdev{Name: name, NumBlocks: numBlocks, BlockSize: blockSize}); err != nil && !IsExists(err) {
		return nil, err
	}
	if b, err = c.GetBdev(ctx, name); err != nil {
		return nil, err
	}
	return check(b)
}

// DeleteMallocBdev deletes the malloc bdev; an absent one is not an error.
func (c *Client) DeleteMallocBdev(ctx context.Context, name string) error {
	if err := c.BdevMallocDelete(ctx, name); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}

// EnsureBlkController makes sure a vhost-blk controller ctrlr exists on
// bdev with the given readonly flag. An existing one that differs (other
// bdev, bdev hot-removed, readonly, or a SCSI controller of that name) is
// an error wrapping ErrMismatch. A missing bdev is an error IsNotFound.
func (c *Client) EnsureBlkController(ctx context.Context, ctrlr, bdev string, readonly bool) (*Controller, error) {
	check := func(ct *Controller) (*Controller, error) {
		if ct.Type() != TypeBlk {
			return nil, fmt.Errorf("controller %q: %w: it is a %q controller, want blk", ctrlr, ErrMismatch, ct.Type())
		}
		blk := ct.BackendSpecific.Block
		switch {
		case blk.Bdev == "":
			return nil, fmt.Errorf("controller %q: %w: its bdev was removed (want %q)", ctrlr, ErrMismatch, bdev)
		case blk.Bdev != bdev:
			return nil, fmt.Errorf("controller %q: %w: it serves bdev %q, want %q", ctrlr, ErrMismatch, blk.Bdev, bdev)
		case blk.Readonly != readonly:
			return nil, fmt.Errorf("controller %q: %w: readonly is %t, want %t", ctrlr, ErrMismatch, blk.Readonly, readonly)
		}
		return ct, nil
	}
	ct, err := c.GetController(ctx, ctrlr)
	if err == nil {
		return check(ct)
	}
	if !IsNotFound(err) {
		return nil, err
	}
	err = c.VhostCreateBlkController(ctx, BlkController{Ctrlr: ctrlr, DevName: bdev, Readonly: readonly})
	if err != nil && !IsExists(err) {
		return nil, err
	}
	if ct, err = c.GetController(ctx, ctrlr); err != nil {
		return nil, err
	}
	return check(ct)
}

// EnsureScsiController makes sure a vhost-scsi controller ctrlr exists with
// target 0 (LUN 0) on bdev. A controller of another type or a target 0 on
// another bdev is an error wrapping ErrMismatch; a missing bdev is an error
// IsNotFound.
func (c *Client) EnsureScsiController(ctx context.Context, ctrlr, bdev string) (*Controller, error) {
	ct, err := c.GetController(ctx, ctrlr)
	if err != nil {
		if !IsNotFound(err) {
			return nil, err
		}
		if err := c.VhostCreateScsiController(ctx, ScsiController{Ctrlr: ctrlr}); err != nil && !IsExists(err) {
			return nil, err
		}
		if ct, err = c.GetController(ctx, ctrlr); err != nil {
			return nil, err
		}
	}
	if ct.Type() != TypeScsi {
		return nil, fmt.Errorf("controller %q: %w: it is a %q controller, want scsi", ctrlr, ErrMismatch, ct.Type())
	}
	checkTarget := func(ct *Controller) (*Controller, bool, error) {
		t, ok := ct.Target(0)
		if !ok {
			return nil, false, nil
		}
		if len(t.Luns) == 0 || t.Luns[0].BdevName != bdev {
			got := ""
			if len(t.Luns) > 0 {
				got = t.Luns[0].BdevName
			}
			return nil, true, fmt.Errorf("controller %q target 0: %w: it serves bdev %q, want %q", ctrlr, ErrMismatch, got, bdev)
		}
		return ct, true, nil
	}
	if got, ok, err := checkTarget(ct); ok {
		return got, err
	}
	// SPDK answers add_target with an unknown bdev by "Invalid argument";
	// look first so the caller gets a not-found error naming the bdev.
	if _, err := c.GetBdev(ctx, bdev); err != nil {
		return nil, fmt.Errorf("controller %q target 0: %w", ctrlr, err)
	}
	if _, err := c.VhostScsiControllerAddTarget(ctx, ctrlr, 0, bdev); err != nil && !IsExists(err) {
		return nil, err
	}
	if ct, err = c.GetController(ctx, ctrlr); err != nil {
		return nil, err
	}
	got, ok, err := checkTarget(ct)
	if !ok && err == nil {
		err = fmt.Errorf("controller %q: target 0 missing after vhost_scsi_controller_add_target", ctrlr)
	}
	return got, err
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
