package spdk

import (
	"context"
	"fmt"
	"time"
)

// The methods below are one SPDK RPC each, with SPDK's parameter names.
// Errors name the method and the object; SPDK's own error stays reachable
// with errors.As(err, **RPCError).

func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// SpdkGetVersion calls spdk_get_version (which takes no params at all).
func (c *Client) SpdkGetVersion(ctx context.Context) (*Version, error) {
	var v Version
	if err := c.Call(ctx, "spdk_get_version", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

type getBdevsParams struct {
	Name    string `json:"name,omitempty"`
	Timeout uint64 `json:"timeout,omitempty"`
}

// BdevGetBdevs calls bdev_get_bdevs. name "" lists all; with a name and a
// timeout > 0 SPDK waits up to timeout for the bdev to appear. An unknown
// name fails with an error IsNotFound (-19).
func (c *Client) BdevGetBdevs(ctx context.Context, name string, timeout time.Duration) ([]Bdev, error) {
	var out []Bdev
	err := c.Call(ctx, "bdev_get_bdevs", getBdevsParams{Name: name, Timeout: uint64(timeout / time.Millisecond)}, &out)
	if err != nil {
		if name != "" {
			return nil, wrap(err, fmt.Sprintf("bdev %q", name))
		}
		return nil, err
	}
	return out, nil
}

// GetBdev returns the named bdev; an absent one is an error IsNotFound.
func (c *Client) GetBdev(ctx context.Context, name string) (*Bdev, error) {
	bdevs, err := c.BdevGetBdevs(ctx, name, 0)
	if err != nil {
		return nil, err
	}
	if len(bdevs) != 1 {
		return nil, fmt.Errorf("bdev %q: %w: bdev_get_bdevs returned %d bdevs", name, ErrProtocol, len(bdevs))
	}
	return &bdevs[0], nil
}

// MallocBdev are the parameters of bdev_malloc_create.
type MallocBdev struct {
	// Name; "" lets SPDK pick Malloc<N>.
	Name      string `json:"name,omitempty"`
	NumBlocks uint64 `json:"num_blocks"`
	// BlockSize must be a multiple of 512.
	BlockSize uint32 `json:"block_size"`
	// UUID; "" lets SPDK generate one.
	UUID string `json:"uuid,omitempty"`
}

// BdevMallocCreate calls bdev_malloc_create and returns the bdev's name. A
// taken name fails with an error IsExists (-17); num_blocks 0 or a block
// size not a multiple of 512 with one IsInvalid (-22).
func (c *Client) BdevMallocCreate(ctx context.Context, p MallocBdev) (string, error) {
	var name string
	if err := c.Call(ctx, "bdev_malloc_create", p, &name); err != nil {
		return "", wrap(err, fmt.Sprintf("bdev %q", p.Name))
	}
	return name, nil
}

type nameParams struct {
	Name string `json:"name"`
}

// BdevMallocDelete calls bdev_malloc_delete. An unknown bdev fails with an
// error IsNotFound (-19). SPDK hot-removes a bdev that a vhost controller
// uses (the controller stays, without its bdev).
func (c *Client) BdevMallocDelete(ctx context.Context, name string) error {
	var ok bool
	return wrap(c.Call(ctx, "bdev_malloc_delete", nameParams{name}, &ok), fmt.Sprintf("bdev %q", name))
}

// BlkController are the parameters of vhost_create_blk_controller.
type BlkController struct {
	Ctrlr   string `json:"ctrlr"`
	DevName string `json:"dev_name"`
	// Cpumask ("0x1", "[0-3]"); "" uses SPDK's core mask.
	Cpumask  string `json:"cpumask,omitempty"`
	Readonly bool   `json:"readonly"`
	// PackedRing enables virtio packed rings.
	PackedRing bool `json:"packed_ring"`
}

// VhostCreateBlkController calls vhost_create_blk_controller. A taken name
// fails IsExists, an unknown bdev IsNotFound (both -32602).
func (c *Client) VhostCreateBlkController(ctx context.Context, p BlkController) error {
	var ok bool
	return wrap(c.Call(ctx, "vhost_create_blk_controller", p, &ok), fmt.Sprintf("controller %q (bdev %q)", p.Ctrlr, p.DevName))
}

// ScsiController are the parameters of vhost_create_scsi_controller.
type ScsiController struct {
	Ctrlr   string `json:"ctrlr"`
	Cpumask string `json:"cpumask,omitempty"`
}

// VhostCreateScsiController calls vhost_create_scsi_controller.
func (c *Client) VhostCreateScsiController(ctx context.Context, p ScsiController) error {
	var ok bool
	return wrap(c.Call(ctx, "vhost_create_scsi_controller", p, &ok), fmt.Sprintf("controller %q", p.Ctrlr))
}

type addTargetParams struct {
	Ctrlr         string `json:"ctrlr"`
	ScsiTargetNum int32  `json:"scsi_target_num"`
	BdevName      string `json:"bdev_name"`
}

// VhostScsiControllerAddTarget calls vhost_scsi_controller_add_target and
// returns the target number used (target -1 = first free slot, 0..7
// otherwise). SPDK answers an unknown bdev with -32602 "Invalid argument".
func (c *Client) VhostScsiControllerAddTarget(ctx context.Context, ctrlr string, target int32, bdev string) (int, error) {
	var num int
	err := c.Call(ctx, "vhost_scsi_controller_add_target", addTargetParams{ctrlr, target, bdev}, &num)
	if err != nil {
		return 0, wrap(err, fmt.Sprintf("controller %q target %d (bdev %q)", ctrlr, target, bdev))
	}
	return num, nil
}

type removeTargetParams struct {
	Ctrlr         string `json:"ctrlr"`
	ScsiTargetNum uint32 `json:"scsi_target_num"`
}

// VhostScsiControllerRemoveTarget calls vhost_scsi_controller_remove_target.
// SPDK answers an empty slot with -32602 "Device or resource busy".
func (c *Client) VhostScsiControllerRemoveTarget(ctx context.Context, ctrlr string, target uint32) error {
	var ok bool
	err := c.Call(ctx, "vhost_scsi_controller_remove_target", removeTargetParams{ctrlr, target}, &ok)
	return wrap(err, fmt.Sprintf("controller %q target %d", ctrlr, target))
}

type ctrlrParams struct {
	Ctrlr string `json:"ctrlr"`
}

// VhostDeleteController calls vhost_delete_controller. An unknown
// controller fails IsNotFound; a SCSI controller that still has targets
// IsBusy.
func (c *Client) VhostDeleteController(ctx context.Context, ctrlr string) error {
	var ok bool
	return wrap(c.Call(ctx, "vhost_delete_controller", ctrlrParams{ctrlr}, &ok), fmt.Sprintf("controller %q", ctrlr))
}

// VhostGetControllers calls vhost_get_controllers; name "" lists all. An
// unknown name fails IsNotFound (-32603).
func (c *Client) VhostGetControllers(ctx context.Context, name string) ([]Controller, error) {
	var out []Controller
	var p any
	if name != "" {
		p = nameParams{name}
	}
	if err := c.Call(ctx, "vhost_get_controllers", p, &out); err != nil {
		if name != "" {
			return nil, wrap(err, fmt.Sprintf("controller %q", name))
		}
		return nil, err
	}
	return out, nil
}

// GetController returns the named controller; an absent one is an error
// IsNotFound.
func (c *Client) GetController(ctx context.Context, name string) (*Controller, error) {
	ctrls, err := c.VhostGetControllers(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(ctrls) != 1 {
		return nil, fmt.Errorf("controller %q: %w: vhost_get_controllers returned %d controllers", name, ErrProtocol, len(ctrls))
	}
	return &ctrls[0], nil
}
