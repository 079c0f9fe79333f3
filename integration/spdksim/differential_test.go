package spdksim_test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/integration/spdksim"
)

// exchange sends one raw request on a connection of its own and returns
// the answer line, "<closed>" when the server closed the connection
// without one, or "<silence>" when none came.
func exchange(t *testing.T, socket, req string) string {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	var ne net.Error
	switch {
	case err == nil:
		return strings.TrimSpace(line)
	case errors.As(err, &ne) && ne.Timeout():
		return "<silence>"
	default:
		return "<closed>"
	}
}

var (
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	sockRE = regexp.MustCompile(`"socket":"[^"]*/`)
)

// normalize hides what differs by nature between two instances: UUIDs and
// the vhost socket directory.
func normalize(s string) string {
	return sockRE.ReplaceAllString(uuidRE.ReplaceAllString(s, "<uuid>"), `"socket":"<dir>/`)
}

// TestSimulatorAnswersAsRealSPDK sends the same raw requests to the
// simulator and to a real spdk_tgt 24.09 and compares every answer: the
// differences issue 18 lists (SCSI delete with targets, the -110 wait,
// memory checked before geometry and names, unnamed numbering, the UUID
// alias, requests without jsonrpc, unparseable input) and the answers
// uspace's driver relies on.
func TestSimulatorAnswersAsRealSPDK(t *testing.T) {
	realdp.NeedSPDK(t)
	real := realdp.StartSPDK(t, realdp.SPDKOptions{})
	dir := t.TempDir()
	vhost := dir + "/vhost"
	if err := os.MkdirAll(vhost, 0o755); err != nil {
		t.Fatal(err)
	}
	sim, err := spdksim.Start(spdksim.Options{RPCSocket: dir + "/spdk.sock", VhostDir: vhost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	// A file where a controller's socket would go (issue 27: the create
	// uspace must not record as made).
	for _, d := range []string{real.VhostDir, vhost} {
		if err := os.WriteFile(d+"/vbfile", nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	req := func(method, params string) string {
		s := `{"jsonrpc":"2.0","id":1,"method":"` + method + `"`
		if params != "" {
			s += `,"params":` + params
		}
		return s + "}"
	}
	for _, tc := range []struct{ what, req string }{
		{"version", req("spdk_get_version", "")},
		{"create Malloc0 as rpc.py", req("bdev_malloc_create", `{"num_blocks":16384,"block_size":4096,"name":"Malloc0"}`)},
		{"unnamed: Malloc0 taken", req("bdev_malloc_create", `{"num_blocks":8,"block_size":512}`)},
		{"unnamed: Malloc1", req("bdev_malloc_create", `{"num_blocks":8,"block_size":512}`)},
		{"duplicate name", req("bdev_malloc_create", `{"num_blocks":8,"block_size":512,"name":"Malloc1"}`)},
		{"block_size 0", req("bdev_malloc_create", `{"num_blocks":8,"block_size":0,"name":"x"}`)},
		{"block_size 520", req("bdev_malloc_create", `{"num_blocks":8,"block_size":520,"name":"x"}`)},
		{"num_blocks 0", req("bdev_malloc_create", `{"num_blocks":0,"block_size":512,"name":"x"}`)},
		{"empty name", req("bdev_malloc_create", `{"num_blocks":8,"block_size":512,"name":""}`)},
		{"numa_id", req("bdev_malloc_create", `{"num_blocks":8,"block_size":512,"name":"x","numa_id":0}`)},
		{"get Malloc0 (aliases)", req("bdev_get_bdevs", `{"name":"Malloc0"}`)},
		{"get unknown", req("bdev_get_bdevs", `{"name":"nope"}`)},
		{"get unknown, waiting", req("bdev_get_bdevs", `{"name":"nope","timeout":100}`)},
		{"no jsonrpc", `{"id":2,"method":"spdk_get_version"}`},
		{"wrong jsonrpc", `{"jsonrpc":"1.0","id":2,"method":"spdk_get_version"}`},
		{"method not a string", `{"jsonrpc":"2.0","id":3,"method":42}`},
		{"no method", `{"jsonrpc":"2.0","id":4}`},
		{"params a string", req("bdev_get_bdevs", `"x"`)},
		{"unknown top-level key", `{"jsonrpc":"2.0","id":5,"method":"spdk_get_version","extra":1}`},
		{"params null", req("vhost_get_controllers", "null")},
		{"unknown method", req("nope", "")},
		{"unparseable", "{nonsense\n"},
		{"scsi controller", req("vhost_create_scsi_controller", `{"ctrlr":"vs0"}`)},
		{"target 0", req("vhost_scsi_controller_add_target", `{"ctrlr":"vs0","scsi_target_num":0,"bdev_name":"Malloc0"}`)},
		{"target 3", req("vhost_scsi_controller_add_target", `{"ctrlr":"vs0","scsi_target_num":3,"bdev_name":"Malloc1"}`)},
		{"empty slot", req("vhost_scsi_controller_remove_target", `{"ctrlr":"vs0","scsi_target_num":5}`)},
		{"scsi listed", req("vhost_get_controllers", "")},
		{"delete scsi with targets", req("vhost_delete_controller", `{"ctrlr":"vs0"}`)},
		{"scsi gone", req("vhost_get_controllers", `{"name":"vs0"}`)},
		{"blk controller", req("vhost_create_blk_controller", `{"ctrlr":"vb0","dev_name":"Malloc0","readonly":false,"packed_ring":false}`)},
		{"blk taken", req("vhost_create_blk_controller", `{"ctrlr":"vb0","dev_name":"Malloc1"}`)},
		{"blk unknown bdev", req("vhost_create_blk_controller", `{"ctrlr":"vb1","dev_name":"nope"}`)},
		{"blk socket path taken by a file", req("vhost_create_blk_controller", `{"ctrlr":"vbfile","dev_name":"Malloc1"}`)},
		{"hot-remove its bdev", req("bdev_malloc_delete", `{"name":"Malloc0"}`)},
		{"blk without bdev", req("vhost_get_controllers", `{"name":"vb0"}`)},
		{"delete blk", req("vhost_delete_controller", `{"ctrlr":"vb0"}`)},
		{"delete unknown", req("vhost_delete_controller", `{"ctrlr":"vb0"}`)},
		{"delete unknown bdev", req("bdev_malloc_delete", `{"name":"Malloc0"}`)},
	} {
		want := normalize(exchange(t, real.RPCSocket, tc.req))
		got := normalize(exchange(t, sim.Addr(), tc.req))
		if got != want {
			t.Errorf("%s: %s\n real SPDK: %s\n simulator: %s", tc.what, tc.req, want, got)
		}
	}
}
