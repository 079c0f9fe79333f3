package realdp_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
)

func volStatusKey(name string) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindVolumeKey, Host: hostName, Volume: name})
}

// spdkObjects are the names of the bdevs and vhost controllers SPDK holds.
func spdkObjects(t *testing.T, w *world) (bdevs, ctrlrs []string) {
	t.Helper()
	var bs []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(w.host.RealSPDK.RPC(t, "bdev_get_bdevs", nil), &bs); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		bdevs = append(bdevs, b.Name)
	}
	var cs []struct {
		Ctrlr string `json:"ctrlr"`
	}
	if err := json.Unmarshal(w.host.RealSPDK.RPC(t, "vhost_get_controllers", nil), &cs); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		ctrlrs = append(ctrlrs, c.Ctrlr)
	}
	slices.Sort(bdevs)
	slices.Sort(ctrlrs)
	return bdevs, ctrlrs
}

// TestVolumesOnRealSPDK: size-based vhost-user blk and scsi volumes are
// made in a real spdk_tgt with device nodes 241:/242:; a spdk_tgt killed
// and restarted empty gets them back; deleting the intents leaves SPDK
// empty.
func TestVolumesOnRealSPDK(t *testing.T) {
	w := newWorld(t, harness.HostOptions{RealSPDK: true})
	vols := map[string]*schema.Volume{
		"blkvol": {Host: hostName, Name: "blkvol", Type: schema.VolumeBlk, Device: "vhostblk5", Root: w.host.VolumeRoot,
			Bdev: "Malloc-vhostblk5", Minor: 5, Malloc: &schema.MallocSpec{SizeBytes: 64 << 20, BlockSize: 4096}},
		"scsivol": {Host: hostName, Name: "scsivol", Type: schema.VolumeSCSI, Device: "vhostscsi6", Root: w.host.VolumeRoot,
			Bdev: "Malloc-vhostscsi6", Minor: 6, Malloc: &schema.MallocSpec{SizeBytes: 64 << 20, BlockSize: 512}},
	}
	objs := map[string]schema.Object{}
	for n, v := range vols {
		objs[schema.VolumeKey(hostName, n)] = v
	}
	rev := w.etcd.Put(t, objs)
	ready := func(rev int64) {
		t.Helper()
		for n, v := range vols {
			s := harness.WaitStatus[schema.VolumeStatus](t, w.etcd, volStatusKey(n), rev, harness.Ready[schema.VolumeStatus])
			var st unix.Stat_t
			if err := unix.Stat(s.DevicePath, &st); err != nil {
				t.Fatalf("volume %s: device node: %v", n, err)
			}
			major := uint32(241)
			if v.Type == schema.VolumeSCSI {
				major = 242
			}
			if st.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(st.Rdev) != major || unix.Minor(st.Rdev) != v.Minor {
				t.Errorf("volume %s: node %s is %o %d:%d, want block %d:%d", n, s.DevicePath, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), major, v.Minor)
			}
		}
		bdevs, ctrlrs := spdkObjects(t, w)
		if !slices.Equal(bdevs, []string{"Malloc-vhostblk5", "Malloc-vhostscsi6"}) || !slices.Equal(ctrlrs, []string{"vhostblk5", "vhostscsi6"}) {
			t.Fatalf("SPDK holds bdevs %v, controllers %v", bdevs, ctrlrs)
		}
	}
	ready(rev)

	w.host.RealSPDK.Kill(t)
	w.host.RealSPDK.Start(t)
	// The agent sees SPDK come back empty and makes both again.
	eventually(t, 30*time.Second, "volumes re-created in the restarted spdk_tgt", func() (bool, string) {
		bdevs, ctrlrs := spdkObjects(t, w)
		return len(bdevs) == 2 && len(ctrlrs) == 2, fmt.Sprint(bdevs, ctrlrs)
	})
	ready(rev)

	var keys []string
	for k := range objs {
		keys = append(keys, k)
	}
	w.etcd.Delete(t, keys...)
	for n := range vols {
		w.etcd.WaitGone(t, volStatusKey(n))
	}
	if bdevs, ctrlrs := spdkObjects(t, w); len(bdevs)+len(ctrlrs) != 0 {
		t.Errorf("after the volumes went SPDK still holds bdevs %v, controllers %v", bdevs, ctrlrs)
	}
}
