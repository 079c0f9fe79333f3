package volume

import (
	"fmt"
	"slices"

	"github.com/uspace-io/uspace/schema"
)

// AllocateMinor returns the lowest minor (0..schema.MaxMinor) that no volume
// in vols uses for the same major (type) and root. Kata resolves a device by
// major:minor inside one root, so that pair must be unique there; the seed
// handed minors out the same way (lowest free, reused after a remove).
func AllocateMinor(vols []*schema.Volume, typ schema.VolumeType, root string) (uint32, error) {
	var used [schema.MaxMinor + 1]bool
	for _, v := range vols {
		if v.Type.Major() == typ.Major() && v.Root == root && v.Minor <= schema.MaxMinor {
			used[v.Minor] = true
		}
	}
	for m, u := range used {
		if !u {
			return uint32(m), nil
		}
	}
	return 0, fmt.Errorf("no free minor for %s devices (major %d) under %s: all %d are in use; remove a volume first",
		typ, typ.Major(), root, schema.MaxMinor+1)
}

// CheckConflicts rejects a new volume whose device or bdev another volume
// of the same host already uses. The device names the SPDK controller and
// the socket, and SPDK controller names are unique per SPDK target, so a
// device is unique per host, whatever the root; a bdev is claimed by one
// controller only.
func CheckConflicts(vols []*schema.Volume, nv *schema.Volume) error {
	for _, v := range vols {
		if v.Name == nv.Name {
			continue
		}
		if v.Device == nv.Device {
			return fmt.Errorf("device %s is already referenced by volume %s", nv.Device, v.Name)
		}
		if v.Bdev == nv.Bdev {
			return fmt.Errorf("bdev %s is already used by volume %s (device %s)", nv.Bdev, v.Name, v.Device)
		}
	}
	return nil
}

// AddMount adds a mount ID to the volume's set of mounts, kept sorted. It
// reports whether the set changed (Docker may repeat a Mount).
func AddMount(v *schema.Volume, id string) bool {
	if slices.Contains(v.Mounts, id) {
		return false
	}
	v.Mounts = append(v.Mounts, id)
	slices.Sort(v.Mounts)
	return true
}

// RemoveMount removes a mount ID and reports whether it was there.
func RemoveMount(v *schema.Volume, id string) bool {
	i := slices.Index(v.Mounts, id)
	if i < 0 {
		return false
	}
	v.Mounts = slices.Delete(v.Mounts, i, i+1)
	if len(v.Mounts) == 0 {
		v.Mounts = nil
	}
	return true
}

// validateMountID accepts what Docker sends: a random hex ID. Other callers
// of the protocol may use other IDs, so only emptiness and length are
// checked; the ID is stored as JSON, never used as a key or a path.
func validateMountID(id string) error {
	switch {
	case id == "":
		return &schema.FieldError{Field: "mount ID", Value: id, Reason: "must not be empty"}
	case len(id) > schema.MaxNameLen:
		return &schema.FieldError{Field: "mount ID", Value: id, Reason: fmt.Sprintf("longer than %d characters", schema.MaxNameLen)}
	}
	return nil
}
