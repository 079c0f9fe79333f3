package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/uspace-io/uspace/schema"
)

// AllocateMinor returns the lowest minor (0..schema.MaxMinor) that no volume
// in vols uses for the same major (type) and root, and that no block node
// in taken holds. Kata resolves a device by major:minor inside one root and
// takes the first match, so that pair must be unique there; the seed handed
// minors out the same way (lowest free, reused after a remove).
func AllocateMinor(vols []*schema.Volume, typ schema.VolumeType, root string, taken map[uint32]string) (uint32, error) {
	var used [schema.MaxMinor + 1]bool
	for _, v := range vols {
		if v.Type.Major() == typ.Major() && v.Root == root && v.Minor <= schema.MaxMinor {
			used[v.Minor] = true
		}
	}
	for m := range taken {
		if m <= schema.MaxMinor {
			used[m] = true
		}
	}
	for m, u := range used {
		if !u {
			return uint32(m), nil
		}
	}
	return 0, fmt.Errorf("no free minor for %s devices (major %d) under %s: all %d are in use (by volumes or by device nodes in %s); remove a volume or a stale node first",
		typ, typ.Major(), root, schema.MaxMinor+1, filepath.Join(root, "block", "devices"))
}

// NodesOnDisk lists the block nodes of major under root's block/devices/
// directory, by minor, leaving out the node named device (the volume's own
// node: the host agent keeps it if its numbers match and otherwise refuses
// the volume, naming it). A node left behind by another tool (the seed
// forgot its volumes on restart and left their nodes) keeps its minor from
// being handed out again. A missing directory holds nothing.
func NodesOnDisk(root string, major uint32, device string) (map[uint32]string, error) {
	dir := filepath.Join(root, "block", "devices")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot allocate a device minor: reading %s: %w", dir, err)
	}
	taken := map[uint32]string{}
	for _, e := range entries {
		if e.Name() == device || e.Type()&fs.ModeDevice == 0 || e.Type()&fs.ModeCharDevice != 0 {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, e.Name()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
			continue
		}
		if unix.Major(uint64(st.Rdev)) == major {
			taken[unix.Minor(uint64(st.Rdev))] = e.Name()
		}
	}
	return taken, nil
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
		if v.Bdev != "" && v.Bdev == nv.Bdev {
			return fmt.Errorf("bdev %s is already used by volume %s (device %s)", nv.Bdev, v.Name, v.Device)
		}
	}
	return nil
}

// AddMounting records a mount ID whose Mount has not answered yet. It
// reports whether the intent changed (Docker may repeat a Mount).
func AddMounting(v *schema.Volume, id string) bool {
	if slices.Contains(v.Mounts, id) || slices.Contains(v.Mounting, id) {
		return false
	}
	v.Mounting = append(v.Mounting, id)
	slices.Sort(v.Mounting)
	return true
}

// ConfirmMount moves a mount ID from Mounting to Mounts: its Mount
// succeeded. It reports whether the intent changed.
func ConfirmMount(v *schema.Volume, id string) bool {
	if slices.Contains(v.Mounts, id) {
		return false
	}
	v.Mounting = remove(v.Mounting, id)
	v.Mounts = append(v.Mounts, id)
	slices.Sort(v.Mounts)
	return true
}

// RemoveMount removes a mount ID, mounted or mounting, and reports whether
// it was there.
func RemoveMount(v *schema.Volume, id string) bool {
	if !slices.Contains(v.Mounts, id) && !slices.Contains(v.Mounting, id) {
		return false
	}
	v.Mounts, v.Mounting = remove(v.Mounts, id), remove(v.Mounting, id)
	return true
}

func remove(ids []string, id string) []string {
	ids = slices.DeleteFunc(ids, func(s string) bool { return s == id })
	if len(ids) == 0 {
		return nil
	}
	return ids
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
