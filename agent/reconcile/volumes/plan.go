package volumes

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/schema"
)

// volumePlan is what apply will do, decided from what SPDK holds before
// anything is created.
type volumePlan struct {
	bdev             string // the bdev the controller serves ("" unknown: a SCSI controller with several)
	adopted          bool
	createBdev       bool
	createController bool
	// deleteController: an owned controller that no longer matches (its
	// bdev was deleted and re-created, or it serves another) is deleted
	// and created again: SPDK cannot re-attach a bdev.
	deleteController bool
	// addTarget: an owned SCSI controller lost its target 0.
	addTarget bool
	// disown: the controller the last status recorded as owned is not in
	// SPDK any more; one of its name, made by hand, is.
	disown bool
}

// plan checks every precondition SPDK can be asked about before the first
// create, so that a refused volume leaves nothing behind. A plan may come
// with a refusal: what it says about ownership (disown) holds anyway.
func (r *Reconciler) plan(ctx context.Context, key string, v *schema.Volume, prev *schema.VolumeStatus) (*volumePlan, error) {
	ctrl, err := r.getController(ctx, v.Device)
	if err != nil {
		return nil, err
	}
	if ctrl != nil && ctrl.Type() != string(v.Type) {
		return nil, refuse("controller %s in SPDK is a %s controller, the volume has type=%s", v.Device, ctrl.Type(), v.Type)
	}
	p := &volumePlan{bdev: v.Bdev}
	if v.Malloc != nil {
		b, err := r.getBdev(ctx, v.Bdev)
		if err != nil {
			return nil, err
		}
		if b == nil {
			p.createBdev = true
		} else if err := checkOwnedBdev(key, v, b); err != nil {
			return nil, err
		}
	}
	if ctrl == nil {
		return r.planNewController(ctx, v, prev, p)
	}
	if prev != nil && prev.OwnsController && prev.Controller == v.Device {
		ours, err := recognise(prev, ctrl)
		if err != nil {
			return nil, err
		}
		if ours {
			return r.planOwnedController(ctx, v, ctrl, p)
		}
		p.disown = true
		r.Log.Warn("controller in SPDK is not the one uspace made for the volume; leaving it alone", "ctrlr", v.Device, "volume", v.Name)
		if v.Malloc != nil {
			return p, refuse("controller %s in SPDK is not the one uspace created for this volume (made again by hand?): uspace neither uses nor deletes it; delete it by hand (rpc.py vhost_delete_controller %s) for uspace to create its own, or remove the volume",
				v.Device, v.Device)
		}
	}
	// Made by hand: adopt it as it is, or refuse; never take it over.
	if v.Malloc != nil {
		return nil, refuse("controller %s already exists in SPDK and was not created by uspace: without -o size the volume adopts it as it is; with -o size choose another -o device",
			v.Device)
	}
	p.adopted = true
	served, err := servedBdev(ctrl, v.Bdev)
	if err != nil {
		return nil, err
	}
	p.bdev = served
	return p, nil
}

// planNewController completes p when SPDK has no controller for v: it is
// created, unless it was adopted (made by hand) or its hand-made bdev is
// missing.
func (r *Reconciler) planNewController(ctx context.Context, v *schema.Volume, prev *schema.VolumeStatus, p *volumePlan) (*volumePlan, error) {
	if prev != nil && prev.Adopted {
		return nil, refuse("controller %s, adopted by this volume as made by hand, is no longer in SPDK; uspace does not re-create what it did not make: create it again by hand (%s), or remove the volume",
			v.Device, handMadeHint(v, prev.Bdev))
	}
	if v.Malloc == nil {
		if v.Bdev == "" {
			return nil, refuse("SPDK has no controller %s to adopt and the volume has no -o size: either create the volume with -o size=<bytes> (e.g. size=64MiB) so that uspace creates bdev and controller, "+
				"or create them by hand first: %s", v.Device, handMadeHint(v, "Malloc0"))
		}
		b, err := r.getBdev(ctx, v.Bdev)
		if err != nil {
			return nil, err
		}
		if b == nil {
			return nil, refuse("bdev %s does not exist in SPDK: create it first (rpc.py bdev_malloc_create 64 4096 -b %s), or create the volume with -o size=<bytes> so that uspace creates it",
				v.Bdev, v.Bdev)
		}
	}
	p.createController = true
	return p, nil
}

// planOwnedController completes p for a controller the agent made: it must
// serve the bdev the volume names, else it is made again.
func (r *Reconciler) planOwnedController(ctx context.Context, v *schema.Volume, ctrl *spdk.Controller, p *volumePlan) (*volumePlan, error) {
	switch {
	case v.Type == schema.VolumeBlk && (ctrl.BackendSpecific.Block.Bdev != v.Bdev || ctrl.BackendSpecific.Block.Readonly):
		p.deleteController, p.createController = true, true
	case v.Type == schema.VolumeSCSI:
		t, ok := ctrl.Target(0)
		switch {
		case !ok:
			p.addTarget = true
		case len(t.Luns) == 0 || t.Luns[0].BdevName != v.Bdev:
			p.deleteController, p.createController = true, true
		}
	}
	if v.Malloc == nil && (p.createController || p.addTarget) {
		if b, err := r.getBdev(ctx, v.Bdev); err != nil {
			return nil, err
		} else if b == nil {
			return nil, refuse("bdev %s (not made by uspace) is no longer in SPDK: create it again by hand (rpc.py bdev_malloc_create 64 4096 -b %s) or remove the volume", v.Bdev, v.Bdev)
		}
	}
	return p, nil
}

// getController returns the controller, nil when SPDK has none of that
// name.
func (r *Reconciler) getController(ctx context.Context, name string) (*spdk.Controller, error) {
	c, err := r.SPDK.GetController(ctx, name)
	if spdk.IsNotFound(err) {
		return nil, nil
	}
	return c, err
}

// getBdev returns the bdev, nil when SPDK has none of that name.
func (r *Reconciler) getBdev(ctx context.Context, name string) (*spdk.Bdev, error) {
	b, err := r.SPDK.GetBdev(ctx, name)
	if spdk.IsNotFound(err) {
		return nil, nil
	}
	return b, err
}

// checkOwnedBdev accepts an existing bdev for a -o size volume only if the
// agent made it for this volume (its UUID says so) with the size asked.
func checkOwnedBdev(key string, v *schema.Volume, b *spdk.Bdev) error {
	if !ownedBdev(key, b) {
		return refuse("bdev %s already exists in SPDK and was not created by uspace for this volume: with -o size uspace creates (and later deletes) the bdev, so it never takes an existing one; "+
			"drop -o size to use it as it is (-o bdev=%s), or choose another -o bdev", v.Bdev, v.Bdev)
	}
	m := v.Malloc
	if b.BlockSize != m.BlockSize || b.SizeBytes() != m.SizeBytes {
		return refuse("bdev %s has %d blocks of %d bytes, the volume asks for %d bytes in blocks of %d", v.Bdev, b.NumBlocks, b.BlockSize, m.SizeBytes, m.BlockSize)
	}
	return nil
}

// servedBdev is the bdev an adopted controller serves, checked against the
// volume's -o bdev when it has one.
func servedBdev(ctrl *spdk.Controller, want string) (string, error) {
	if blk := ctrl.BackendSpecific.Block; blk != nil {
		switch {
		case blk.Bdev == "":
			return "", refuse("controller %s (made by hand) serves no bdev: its bdev was deleted; uspace does not repair what it did not make: re-create the controller by hand, or remove the volume", ctrl.Ctrlr)
		case want != "" && blk.Bdev != want:
			return "", refuse("controller %s (made by hand) serves bdev %s, the volume asks for -o bdev=%s", ctrl.Ctrlr, blk.Bdev, want)
		}
		return blk.Bdev, nil
	}
	bdevs := scsiBdevs(ctrl)
	switch {
	case len(bdevs) == 0:
		return "", refuse("SCSI controller %s (made by hand) has no targets: add one by hand (rpc.py vhost_scsi_controller_add_target %s 0 <bdev>)", ctrl.Ctrlr, ctrl.Ctrlr)
	case want != "" && !slices.Contains(bdevs, want):
		return "", refuse("SCSI controller %s (made by hand) serves %s, not the volume's -o bdev=%s", ctrl.Ctrlr, strings.Join(bdevs, ", "), want)
	case len(bdevs) == 1:
		return bdevs[0], nil
	case want != "":
		return want, nil
	}
	return "", nil
}

// scsiBdevs lists the bdevs of every LUN of a SCSI controller.
func scsiBdevs(ctrl *spdk.Controller) []string {
	var bdevs []string
	for _, t := range ctrl.BackendSpecific.Scsi {
		for _, l := range t.Luns {
			bdevs = append(bdevs, l.BdevName)
		}
	}
	return bdevs
}

// handMadeHint is how to make a volume's controller by hand.
func handMadeHint(v *schema.Volume, bdev string) string {
	if bdev == "" {
		bdev = "Malloc0"
	}
	mk := fmt.Sprintf("rpc.py bdev_malloc_create 64 4096 -b %s; ", bdev)
	if v.Type == schema.VolumeSCSI {
		return mk + fmt.Sprintf("rpc.py vhost_create_scsi_controller %s; rpc.py vhost_scsi_controller_add_target %s 0 %s", v.Device, v.Device, bdev)
	}
	return mk + fmt.Sprintf("rpc.py vhost_create_blk_controller %s %s", v.Device, bdev)
}
