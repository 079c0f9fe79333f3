package vppsim_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"

	"github.com/uspace-io/uspace/integration/vppsim"
)

func isSock(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// TestSocketFilesAcrossRestart: a restart behaves like a VPP crash (stale
// socket files stay, nothing listens on them), re-creating works over the
// stale files, and Close cleans up what the dataplane created.
func TestSocketFilesAcrossRestart(t *testing.T) {
	s := newSim(t, vppsim.Options{})
	dir := filepath.Dir(s.Socket())
	mpath := filepath.Join(dir, "m.sock")
	vpath := filepath.Join(dir, "v.sock")
	create := func() {
		t.Helper()
		conn := govppConnect(t, s.Socket())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		mc := memif.NewServiceClient(conn)
		if _, err := mc.MemifSocketFilenameAddDel(ctx, &memif.MemifSocketFilenameAddDel{IsAdd: true, SocketID: 1, SocketFilename: mpath}); err != nil {
			t.Fatal(err)
		}
		if _, err := mc.MemifCreateV2(ctx, &memif.MemifCreateV2{SocketID: 1, Role: memif.MEMIF_ROLE_API_MASTER}); err != nil {
			t.Fatal(err)
		}
		if _, err := vhost_user.NewServiceClient(conn).CreateVhostUserIfV2(ctx, &vhost_user.CreateVhostUserIfV2{IsServer: true, SockFilename: vpath}); err != nil {
			t.Fatal(err)
		}
		conn.Disconnect()
	}
	create()
	for _, p := range []string{mpath, vpath} {
		if !isSock(p) {
			t.Fatalf("%s not created", p)
		}
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{mpath, vpath} {
		if !isSock(p) {
			t.Fatalf("stale %s should stay after a crash-like restart", p)
		}
	}
	if c, err := net.Dial("unixpacket", mpath); err == nil {
		c.Close()
		t.Fatal("nothing may listen on a stale socket")
	}
	create() // over the stale files
	if c, err := net.Dial("unixpacket", mpath); err != nil {
		t.Fatalf("re-created master does not listen: %v", err)
	} else {
		c.Close()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{mpath, vpath, s.Socket()} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Fatalf("%s left after Close: %v", p, err)
		}
	}
	if err := s.Start(); err == nil {
		t.Fatal("a closed simulator must not start again")
	}
}

func TestStopStart(t *testing.T) {
	s := newSim(t, vppsim.Options{})
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(s.Socket()); !os.IsNotExist(err) {
		t.Fatalf("API socket present while stopped: %v", err)
	}
	if st := s.Snapshot(); st.Running {
		t.Fatal("snapshot says running")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("double Start accepted")
	}
	st := s.Snapshot()
	if !st.Running || st.Generation != 2 || len(st.Interfaces) != 1 || st.Interfaces[0].Name != "local0" {
		t.Fatalf("snapshot after restart = %+v", st)
	}
	govppConnect(t, s.Socket())
}

func TestControlProtocol(t *testing.T) {
	s := newSim(t, vppsim.Options{})
	ctl := filepath.Join(filepath.Dir(s.Socket()), "ctl.sock")
	cs, err := s.ListenControl(ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	resp, err := vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpMessages})
	if err != nil || len(resp.Messages) < 20 {
		t.Fatalf("messages: %v %d", err, len(resp.Messages))
	}
	if _, err := vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpFail, Msg: "memif_create_v2", Count: 1, Retval: -68}); err != nil {
		t.Fatal(err)
	}
	if _, err := vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpFail, Msg: "no_such_message"}); err == nil {
		t.Fatal("unknown message accepted")
	}
	if _, err := vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpLatency, Latency: "soon"}); err == nil {
		t.Fatal("bad latency accepted")
	}
	conn := govppConnect(t, s.Socket())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = memif.NewServiceClient(conn).MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_SLAVE})
	if rv := retval(t, err); rv != -68 {
		t.Fatalf("injected via control: retval %d", rv)
	}
	if _, err := vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpLatency, Msg: "memif_create_v2", Latency: "150ms"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := memif.NewServiceClient(conn).MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_SLAVE}); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Fatal("latency via control not applied")
	}
	if _, err := vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpClearFaults}); err != nil {
		t.Fatal(err)
	}
	resp, err = vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpSnapshot})
	if err != nil || resp.State == nil || len(resp.State.Memifs) != 1 || resp.State.Memifs[0].Role != "slave" || resp.State.Clients != 1 {
		t.Fatalf("snapshot: %v %+v", err, resp.State)
	}
	// the snapshot is plain JSON
	b, _ := json.Marshal(resp.State)
	if !strings.Contains(string(b), `"name":"memif0/0"`) {
		t.Fatalf("snapshot JSON: %s", b)
	}
	resp, err = vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpDrop})
	if err != nil || resp.Dropped != 1 {
		t.Fatalf("drop: %v %+v", err, resp)
	}
	if _, err := vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpRestart}); err != nil {
		t.Fatal(err)
	}
	resp, _ = vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpSnapshot})
	if resp.State.Generation != 2 || len(resp.State.Memifs) != 0 {
		t.Fatalf("after restart: %+v", resp.State)
	}
	if _, err := vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpStop}); err != nil {
		t.Fatal(err)
	}
	if _, err := vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpStart}); err != nil {
		t.Fatal(err)
	}
	if _, err := vppsim.Control(ctl, vppsim.ControlRequest{Op: "nope"}); err == nil || !strings.Contains(err.Error(), "unknown op") {
		t.Fatalf("unknown op: %v", err)
	}
}

func TestExcludedMessagesAreNotListed(t *testing.T) {
	s := newSim(t, vppsim.Options{Exclude: []string{"memif_dump", "show_version_51077d14"}})
	for _, m := range s.Messages() {
		if m == "memif_dump_51077d14" || m == "show_version_51077d14" {
			t.Fatalf("%s listed despite Exclude", m)
		}
	}
	if _, ok := s.MessageID("memif_details_da34feb9"); !ok {
		t.Fatal("memif_details should remain")
	}
}
