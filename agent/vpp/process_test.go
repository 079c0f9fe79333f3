package vpp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/integration/vppsim"
)

// buildSim compiles cmd/uspace-vppsim into dir.
func buildSim(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "uspace-vppsim")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/uspace-io/uspace/cmd/uspace-vppsim")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSimulatorProcess runs the driver against uspace-vppsim as a separate
// process: real sockets between processes, the control socket, signals.
func TestSimulatorProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := shortTempDir(t)
	bin := buildSim(t, dir)
	api := filepath.Join(dir, "api.sock")
	ctl := filepath.Join(dir, "ctl.sock")
	stateFile := filepath.Join(dir, "state.json")
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--socket", api, "--runtime-dir", filepath.Join(dir, "run"),
		"--control", ctl, "--state-dump", stateFile, "--log-level", "warn")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	waitFor(t, "control socket", 10*time.Second, func() bool { return isSocket(ctl) })

	c := vpp.Dial(vpp.Config{Socket: api, Logger: quietLogger()})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ok(t, c.WaitConnected(ctx))
	first := waitEvent(t, c, vpp.EventConnected, 5*time.Second)
	if first.PID != uint32(cmd.Process.Pid) {
		t.Fatalf("vpe_pid %d, simulator pid %d", first.PID, cmd.Process.Pid)
	}

	sock := filepath.Join(dir, "shared", "memif-c1-eth0.sock")
	ok(t, os.MkdirAll(filepath.Dir(sock), 0o700))
	id := must(c.EnsureMemifSocket(ctx, sock))(t)
	m := must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "c1/eth0", SocketID: id, Role: vpp.MemifMaster}))(t)
	ok(t, c.SetAdminUp(ctx, m.SwIfIndex, true))
	if !isSocket(sock) {
		t.Fatal("memif socket not created by the simulator process")
	}

	// snapshot over the control socket
	resp, err := vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpSnapshot})
	ok(t, err)
	st, found := resp.State.Interface(m.Name)
	if !found || st.Tag != "uspace:c1/eth0" || !st.AdminUp {
		t.Fatalf("snapshot interface = %+v (found %t)", st, found)
	}

	// injected failure over the control socket surfaces with its retval
	_, err = vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpFail, Msg: "sw_interface_set_mtu", Count: 1, Retval: -30})
	ok(t, err)
	wantRetval(t, c.SetMTU(ctx, m.SwIfIndex, 1500), -30, nil)
	ok(t, c.SetMTU(ctx, m.SwIfIndex, 1500))
	if _, err := vppsim.Control(ctl, vppsim.ControlRequest{Op: "bogus"}); err == nil {
		t.Fatal("unknown control op accepted")
	}

	// SIGUSR1 writes the state file
	ok(t, cmd.Process.Signal(syscall.SIGUSR1))
	waitFor(t, "state dump", 10*time.Second, func() bool { return exists(stateFile) })
	var dumped vppsim.State
	b, err := os.ReadFile(stateFile)
	ok(t, err)
	ok(t, json.Unmarshal(b, &dumped))
	if st, found := dumped.Interface(m.Name); !found || st.MTU[0] != 1500 {
		t.Fatalf("state dump lacks %s: %s", m.Name, b)
	}

	// restart through the control socket: the driver reports it
	_, err = vppsim.Control(ctl, vppsim.ControlRequest{Op: vppsim.OpRestart})
	ok(t, err)
	up := waitEvent(t, c, vpp.EventConnected, 20*time.Second)
	if !up.Restarted {
		t.Fatalf("restart not reported: %+v", up)
	}
	if ms := must(c.Memifs(ctx))(t); len(ms) != 0 {
		t.Fatalf("memifs survived the restart: %+v", ms)
	}
	id = must(c.EnsureMemifSocket(ctx, sock))(t)
	must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "c1/eth0", SocketID: id, Role: vpp.MemifMaster}))(t)

	// SIGHUP restarts too
	ok(t, cmd.Process.Signal(syscall.SIGHUP))
	if ev := waitEvent(t, c, vpp.EventConnected, 20*time.Second); !ev.Restarted || ev.PID == up.PID {
		t.Fatalf("SIGHUP restart: %+v", ev)
	}
	id = must(c.EnsureMemifSocket(ctx, sock))(t)
	must(c.CreateMemif(ctx, vpp.MemifSpec{Owner: "c1/eth0", SocketID: id, Role: vpp.MemifMaster}))(t)

	// SIGTERM: clean exit, sockets removed
	ok(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("simulator did not exit on SIGTERM")
	}
	for _, p := range []string{api, ctl, sock} {
		if exists(p) {
			t.Fatalf("%s left behind after SIGTERM", p)
		}
	}
	waitEvent(t, c, vpp.EventDisconnected, 10*time.Second)
	if strings.Contains(stderr.String(), "level=ERROR") {
		t.Fatalf("simulator logged errors:\n%s", stderr.String())
	}
}
