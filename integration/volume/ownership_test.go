package volume_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
)

// TestDockerRmLeavesWhatUspaceDidNotMake covers issue 27 item 7 with the
// real docker CLI, against the simulator and the real SPDK 24.09: uspace
// owns a controller only once SPDK made it for uspace, and deletes it only
// while it can tell it is that one. A controller whose create SPDK refused
// (a file where SPDK puts its socket), later made by hand under that name,
// is adopted, not owned; a controller uspace made, replaced by hand while
// the agent was down, is left alone. `docker volume rm` of both leaves
// the hand-made controllers and bdevs exactly where they are and removes
// only uspace's own bdev.
func TestDockerRmLeavesWhatUspaceDidNotMake(t *testing.T) {
	dockerAvailable(t)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { rmLeavesWhatUspaceDidNotMake(t, b.opts) })
	}
}

func rmLeavesWhatUspaceDidNotMake(t *testing.T, opts harness.HostOptions) {
	e, h, created := dockerHost(t, opts)
	create := func(name string, opts ...string) int64 {
		t.Helper()
		args := []string{"volume", "create", "--driver", testPlugin, "--name", name}
		for _, o := range opts {
			args = append(args, "--opt", o)
		}
		if _, err := dockerErr(args...); err != nil {
			if msg := err.Error(); strings.Contains(msg, "must be unique") || strings.Contains(msg, "already") {
				t.Skipf("a Docker volume %s of another driver exists on this machine; not touching it (%v)", name, err)
			}
			t.Fatal(err)
		}
		created[name] = true
		_, rev := intent(t, e, h, name)
		return rev
	}

	// SPDK refuses the create: nothing of uspace's, nothing recorded.
	seedRPC(t, h, "bdev_malloc_create", "64", "4096", "-b", "Hand8")
	blocker := filepath.Join(h.VolumeRoot, "block", "sockets", "vhostblk8")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rev := create("never", "device=vhostblk8", "bdev=Hand8")
	st := harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, "never"), rev, func(s *schema.VolumeStatus) bool {
		return strings.Contains(s.Error, "Input/output error")
	})
	if st.OwnsController {
		t.Fatalf("status %+v: a controller SPDK refused to create is recorded as owned", st)
	}
	// Made by hand under that name while the agent is down: adopted.
	h.Agent.Kill()
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	seedRPC(t, h, "vhost_create_blk_controller", "vhostblk8", "Hand8")
	h.RestartAgent(t)
	harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, "never"), rev, func(s *schema.VolumeStatus) bool {
		return s.Ready && s.Adopted && !s.OwnsController
	})

	// uspace makes bdev and controller; the controller is replaced by hand
	// (same name, a hand-made bdev) while the agent is down.
	rev = create("replaced", "device=vhostblk9", "size=16MiB")
	st = harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, "replaced"), rev, harness.Ready[schema.VolumeStatus])
	if !st.OwnsController || !st.OwnsBdev || st.ControllerID == "" {
		t.Fatalf("status %+v, want both owned and the controller identified", st)
	}
	h.Agent.Kill()
	seedRPC(t, h, "vhost_delete_controller", "vhostblk9")
	seedRPC(t, h, "bdev_malloc_create", "64", "4096", "-b", "Hand9")
	seedRPC(t, h, "vhost_create_blk_controller", "vhostblk9", "Hand9")
	h.RestartAgent(t)
	harness.WaitStatus[schema.VolumeStatus](t, e, volStatusKey(h, "replaced"), 0, func(s *schema.VolumeStatus) bool {
		return strings.Contains(s.Error, "controller vhostblk9 in SPDK is not the one uspace created for this volume") && !s.OwnsController
	})

	for _, v := range []string{"never", "replaced"} {
		docker(t, "volume", "rm", v)
		delete(created, v)
	}
	ctrls, bdevs := spdkServes(t, h)
	if want := map[string]string{"vhostblk8": "Hand8", "vhostblk9": "Hand9"}; !maps.Equal(ctrls, want) {
		t.Fatalf("after docker volume rm SPDK's controllers serve %v, want the hand-made %v", ctrls, want)
	}
	if !slices.Equal(bdevs, []string{"Hand8", "Hand9"}) {
		t.Fatalf("after docker volume rm SPDK holds bdevs %v, want the hand-made Hand8 and Hand9 (uspace's own gone)", bdevs)
	}
}

// spdkServes maps SPDK's blk controllers to the bdev each serves, and lists
// its bdevs, sorted.
func spdkServes(t *testing.T, h *harness.Host) (map[string]string, []string) {
	t.Helper()
	var ctrls []struct {
		Ctrlr           string `json:"ctrlr"`
		BackendSpecific struct {
			Block struct {
				Bdev string `json:"bdev"`
			} `json:"block"`
		} `json:"backend_specific"`
	}
	if err := json.Unmarshal(rpc(t, h.SPDKSocket, "vhost_get_controllers", nil), &ctrls); err != nil {
		t.Fatal(err)
	}
	serves := map[string]string{}
	for _, c := range ctrls {
		serves[c.Ctrlr] = c.BackendSpecific.Block.Bdev
	}
	var bs []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(rpc(t, h.SPDKSocket, "bdev_get_bdevs", nil), &bs); err != nil {
		t.Fatal(err)
	}
	var bdevs []string
	for _, b := range bs {
		bdevs = append(bdevs, b.Name)
	}
	slices.Sort(bdevs)
	return serves, bdevs
}
