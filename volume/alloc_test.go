package volume

import (
	"slices"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/schema"
)

func vol(name string, typ schema.VolumeType, root string, minor uint32) *schema.Volume {
	return &schema.Volume{Name: name, Type: typ, Device: name, Bdev: name, Root: root, Minor: minor}
}

func TestAllocateMinor(t *testing.T) {
	const other = "/srv/vhost"
	vols := []*schema.Volume{
		vol("a", schema.VolumeBlk, testRoot, 0),
		vol("b", schema.VolumeBlk, testRoot, 2),
		vol("c", schema.VolumeSCSI, testRoot, 1),
		vol("d", schema.VolumeBlk, other, 1),
	}
	for _, tc := range []struct {
		typ  schema.VolumeType
		root string
		want uint32
	}{
		{schema.VolumeBlk, testRoot, 1},  // 0 and 2 taken: lowest free, as the seed reused 1 after rm volume1
		{schema.VolumeSCSI, testRoot, 0}, // per major
		{schema.VolumeBlk, other, 0},     // per root
		{schema.VolumeSCSI, other, 0},
	} {
		got, err := AllocateMinor(vols, tc.typ, tc.root)
		if err != nil || got != tc.want {
			t.Errorf("AllocateMinor(%s, %s) = %d, %v; want %d", tc.typ, tc.root, got, err, tc.want)
		}
	}
	if got, _ := AllocateMinor(nil, schema.VolumeBlk, testRoot); got != 0 {
		t.Errorf("empty: %d", got)
	}
}

func TestAllocateMinorExhausted(t *testing.T) {
	var vols []*schema.Volume
	for m := range uint32(schema.MaxMinor + 1) {
		vols = append(vols, vol("v", schema.VolumeBlk, testRoot, m))
	}
	_, err := AllocateMinor(vols, schema.VolumeBlk, testRoot)
	if err == nil || !strings.Contains(err.Error(), "no free minor for blk devices (major 241)") {
		t.Fatalf("err = %v", err)
	}
	if got, err := AllocateMinor(vols, schema.VolumeSCSI, testRoot); err != nil || got != 0 {
		t.Fatalf("scsi: %d, %v", got, err)
	}
	vols = slices.Delete(vols, 200, 201)
	if got, err := AllocateMinor(vols, schema.VolumeBlk, testRoot); err != nil || got != 200 {
		t.Fatalf("after freeing 200: %d, %v", got, err)
	}
}

func TestCheckConflicts(t *testing.T) {
	vols := []*schema.Volume{{Name: "volume0", Device: "vhostblk0", Bdev: "Malloc0", Root: testRoot}}
	for _, tc := range []struct {
		v    schema.Volume
		want string
	}{
		{schema.Volume{Name: "volume1", Device: "vhostblk1", Bdev: "Malloc1"}, ""},
		{schema.Volume{Name: "volume0", Device: "vhostblk0", Bdev: "Malloc0"}, ""}, // itself
		{schema.Volume{Name: "volume1", Device: "vhostblk0", Bdev: "Malloc1"}, "device vhostblk0 is already referenced by volume volume0"},
		{schema.Volume{Name: "volume1", Device: "vhostblk0", Bdev: "Malloc1", Root: "/srv"}, "device vhostblk0 is already referenced by volume volume0"},
		{schema.Volume{Name: "volume1", Device: "vhostblk1", Bdev: "Malloc0"}, "bdev Malloc0 is already used by volume volume0"},
	} {
		err := CheckConflicts(vols, &tc.v)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: err %v, want %q", tc.v, err, tc.want)
		}
	}
}

func TestMountSet(t *testing.T) {
	v := &schema.Volume{}
	if !AddMount(v, "b") || !AddMount(v, "a") || AddMount(v, "b") {
		t.Fatal("AddMount")
	}
	if !slices.Equal(v.Mounts, []string{"a", "b"}) {
		t.Fatalf("mounts %v", v.Mounts)
	}
	if RemoveMount(v, "c") || !RemoveMount(v, "a") || RemoveMount(v, "a") {
		t.Fatal("RemoveMount")
	}
	if !RemoveMount(v, "b") || v.Mounts != nil {
		t.Fatalf("mounts %v, want nil (omitted from JSON)", v.Mounts)
	}
	if validateMountID("") == nil || validateMountID(strings.Repeat("f", 254)) == nil || validateMountID(strings.Repeat("f", 64)) != nil {
		t.Fatal("validateMountID")
	}
}
