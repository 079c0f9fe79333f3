package volumes

import (
	"context"
	"errors"
	"fmt"

	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/schema"
)

// apply carries out a plan: what it deletes goes first; what it creates is
// recorded as owned in etcd before SPDK makes it, and a controller's
// identity once SPDK made it; then the socket is made visible and the
// device node made.
func (r *Reconciler) apply(ctx context.Context, key, sk string, v *schema.Volume, p *volumePlan, st *schema.VolumeStatus) error {
	if p.deleteController {
		if err := r.SPDK.DeleteController(ctx, v.Device); err != nil {
			return fmt.Errorf("delete controller %s to make it again: %w", v.Device, err)
		}
		st.ControllerID = ""
	}
	if p.createBdev || p.createController {
		st.OwnsBdev = st.OwnsBdev || p.createBdev
		if p.createController {
			st.OwnsController, st.ControllerID = true, ""
		}
		if err := r.record(ctx, sk, st); err != nil {
			return fmt.Errorf("record volume %s before creating its SPDK objects: %w", v.Name, err)
		}
	}
	if p.createBdev {
		m := v.Malloc
		_, err := r.SPDK.BdevMallocCreate(ctx, spdk.MallocBdev{
			Name: v.Bdev, NumBlocks: m.SizeBytes / uint64(m.BlockSize), BlockSize: m.BlockSize, UUID: ownedBdevUUID(key),
		})
		if err != nil {
			if err := r.mallocCreateFailed(ctx, key, v, err); err != nil {
				return err
			}
		}
	}
	if p.createController {
		if err := r.createController(ctx, v, p, st); err != nil {
			return err
		}
	}
	if p.addTarget {
		if _, err := r.SPDK.VhostScsiControllerAddTarget(ctx, v.Device, 0, v.Bdev); err != nil && !spdk.IsExists(err) {
			return err
		}
	}
	ctrl, err := r.SPDK.GetController(ctx, v.Device)
	if err != nil {
		return err
	}
	if st.OwnsController && st.ControllerID == "" {
		if st.ControllerID, err = controllerID(ctrl.Socket); err != nil {
			return err
		}
	}
	return r.makeFiles(v, ctrl.Socket)
}

// record writes st, which names as owned what is about to be created, and
// waits until etcd has it: a crash after the create then leaves a record
// of what to clean up. The status writer's own record (Get) may not be in
// etcd yet, after a write that failed.
func (r *Reconciler) record(ctx context.Context, sk string, st *schema.VolumeStatus) error {
	pending := *st
	if err := r.Status.Put(ctx, sk, &pending); err != nil {
		return err
	}
	return r.Status.Written(ctx, sk)
}

// createController makes v's controller (a SCSI one with its target 0).
// When SPDK answers that it made none, the status stops recording it as
// owned: a controller of that name made later by hand is not uspace's.
// Without an answer the record stays, and the next pass recognises what
// SPDK holds (recognise).
func (r *Reconciler) createController(ctx context.Context, v *schema.Volume, p *volumePlan, st *schema.VolumeStatus) error {
	var err error
	if v.Type == schema.VolumeBlk {
		err = r.SPDK.VhostCreateBlkController(ctx, spdk.BlkController{Ctrlr: v.Device, DevName: v.Bdev})
	} else {
		err = r.SPDK.VhostCreateScsiController(ctx, spdk.ScsiController{Ctrlr: v.Device})
	}
	var rpcErr *spdk.RPCError
	switch {
	case err == nil:
		if v.Type == schema.VolumeSCSI {
			_, err = r.SPDK.VhostScsiControllerAddTarget(ctx, v.Device, 0, v.Bdev)
		}
		return err
	case spdk.IsExists(err):
		// Made by hand between the check and the create: not ours, and
		// a refused volume leaves nothing of its own behind.
		st.OwnsController = false
		if p.createBdev {
			if derr := r.SPDK.DeleteMallocBdev(ctx, v.Bdev); derr != nil {
				return errors.Join(err, derr)
			}
			st.OwnsBdev = false
		}
		return refuse("controller %s appeared in SPDK while uspace was about to create it: it is not uspace's; the volume adopts it on its next mount (without -o size)", v.Device)
	case errors.As(err, &rpcErr):
		st.OwnsController = false
		return err
	}
	return err
}

// mallocCreateFailed sorts out a failed bdev_malloc_create. SPDK checks
// memory before names, so a taken name can come back as -12 as well as
// -17: what SPDK holds now decides.
func (r *Reconciler) mallocCreateFailed(ctx context.Context, key string, v *schema.Volume, err error) error {
	var rpcErr *spdk.RPCError
	if !errors.As(err, &rpcErr) {
		return err // no answer: the next pass looks again
	}
	b, gerr := r.getBdev(ctx, v.Bdev)
	if gerr != nil {
		return errors.Join(err, gerr)
	}
	if b != nil {
		return checkOwnedBdev(key, v, b)
	}
	if rpcErr.Code == -12 {
		return refuse("SPDK has no memory left for a %d-byte malloc bdev %s (%v): free some, or create a smaller volume", v.Malloc.SizeBytes, v.Bdev, err)
	}
	return refuse("creating bdev %s: %v", v.Bdev, err)
}
