package spdk

import "encoding/json"

// Version is the result of spdk_get_version.
type Version struct {
	// Version is e.g. "SPDK v24.09 git sha1 <sha>".
	Version string        `json:"version"`
	Fields  VersionFields `json:"fields"`
}

// VersionFields are the parsed parts of Version.
type VersionFields struct {
	Major  int    `json:"major"`
	Minor  int    `json:"minor"`
	Patch  int    `json:"patch"`
	Suffix string `json:"suffix"`
	// Commit is present only when SPDK was built from git.
	Commit string `json:"commit,omitempty"`
}

// Bdev is one element of bdev_get_bdevs.
type Bdev struct {
	Name               string            `json:"name"`
	Aliases            []string          `json:"aliases"`
	ProductName        string            `json:"product_name"`
	BlockSize          uint32            `json:"block_size"`
	NumBlocks          uint64            `json:"num_blocks"`
	UUID               string            `json:"uuid,omitempty"`
	AssignedRateLimits map[string]uint64 `json:"assigned_rate_limits,omitempty"`
	Claimed            bool              `json:"claimed"`
	ClaimType          string            `json:"claim_type,omitempty"`
	Zoned              bool              `json:"zoned"`
	SupportedIOTypes   map[string]bool   `json:"supported_io_types,omitempty"`
	DriverSpecific     json.RawMessage   `json:"driver_specific,omitempty"`
}

// SizeBytes is BlockSize * NumBlocks.
func (b Bdev) SizeBytes() uint64 { return uint64(b.BlockSize) * b.NumBlocks }

// MallocProductName is the product_name SPDK reports for malloc bdevs.
const MallocProductName = "Malloc disk"

// Controller is one element of vhost_get_controllers.
type Controller struct {
	Ctrlr           string          `json:"ctrlr"`
	Cpumask         string          `json:"cpumask"`
	DelayBaseUs     uint32          `json:"delay_base_us"`
	IopsThreshold   uint32          `json:"iops_threshold"`
	Socket          string          `json:"socket"`
	Sessions        []Session       `json:"sessions,omitempty"`
	BackendSpecific BackendSpecific `json:"backend_specific"`
}

// Controller types as reported by Controller.Type.
const (
	TypeBlk  = "blk"
	TypeScsi = "scsi"
)

// Type is TypeBlk or TypeScsi (or "" for a backend this driver does not
// know).
func (c Controller) Type() string {
	switch {
	case c.BackendSpecific.Block != nil:
		return TypeBlk
	case c.BackendSpecific.Scsi != nil:
		return TypeScsi
	}
	return ""
}

// Target returns the SCSI target in slot num, if any.
func (c Controller) Target(num uint32) (ScsiTarget, bool) {
	for _, t := range c.BackendSpecific.Scsi {
		if t.ScsiDevNum == num {
			return t, true
		}
	}
	return ScsiTarget{}, false
}

// Session is a connected vhost-user front end (e.g. QEMU).
type Session struct {
	Vid             int    `json:"vid"`
	ID              int    `json:"id"`
	Name            string `json:"name"`
	Started         bool   `json:"started"`
	MaxQueues       int    `json:"max_queues"`
	InflightTaskCnt int    `json:"inflight_task_cnt"`
}

// BackendSpecific holds exactly one of Block (vhost-blk) or Scsi
// (vhost-scsi; an empty, non-nil slice for a controller without targets).
type BackendSpecific struct {
	Block *BlockBackend `json:"block,omitempty"`
	Scsi  []ScsiTarget  `json:"scsi,omitempty"`
}

// UnmarshalJSON keeps "scsi": [] distinguishable from an absent key.
func (b *BackendSpecific) UnmarshalJSON(data []byte) error {
	var raw struct {
		Block *BlockBackend    `json:"block"`
		Scsi  *json.RawMessage `json:"scsi"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	b.Block = raw.Block
	b.Scsi = nil
	if raw.Scsi != nil {
		b.Scsi = []ScsiTarget{}
		if err := json.Unmarshal(*raw.Scsi, &b.Scsi); err != nil {
			return err
		}
		if b.Scsi == nil {
			b.Scsi = []ScsiTarget{}
		}
	}
	return nil
}

// BlockBackend is the vhost-blk part of a controller.
type BlockBackend struct {
	Readonly bool `json:"readonly"`
	// Bdev is empty ("bdev": null) once the bdev was hot-removed.
	Bdev      string `json:"bdev"`
	Transport string `json:"transport"`
}

// ScsiTarget is one target of a vhost-scsi controller.
type ScsiTarget struct {
	ScsiDevNum uint32    `json:"scsi_dev_num"`
	ID         int       `json:"id"`
	TargetName string    `json:"target_name"`
	Luns       []ScsiLun `json:"luns"`
}

// ScsiLun is one LUN of a target.
type ScsiLun struct {
	ID       int    `json:"id"`
	BdevName string `json:"bdev_name"`
}
