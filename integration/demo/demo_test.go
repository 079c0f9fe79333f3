package demo_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
)

func demoCmd(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	bin := filepath.Dir(binaries.Path(t, "uspace-agent"))
	for _, b := range []string{"etcdctl", "uspace-etcd", "userspace", "uspace-vppsim", "uspace-spdksim", "uspace-volume", "uspacectl", "host-local"} {
		if p := binaries.Path(t, b); filepath.Dir(p) != bin {
			// Outside make, binaries are built into one temp dir too.
			t.Fatalf("%s built into %s, not %s", b, filepath.Dir(p), bin)
		}
	}
	cmd := exec.Command("../../deployments/demo/demo.sh")
	port, peer := harness.FreeAddr(t), harness.FreeAddr(t)
	cmd.Env = append(os.Environ(), "BIN="+bin,
		"USPACE_DEMO_ETCD_PORT="+port[strings.LastIndex(port, ":")+1:],
		"USPACE_DEMO_PEER_PORT="+peer[strings.LastIndex(peer, ":")+1:])
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// leftovers lists the demo's namespaces and processes still there.
func leftovers(t *testing.T) []string {
	t.Helper()
	var left []string
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "uspace-demo-") {
			left = append(left, "netns "+l)
		}
	}
	if out, err := exec.Command("pgrep", "-af", "/tmp/uspace-demo\\.").Output(); err == nil {
		left = append(left, strings.Fields(string(out))...)
	}
	return left
}

func TestDemoScript(t *testing.T) {
	cmd := demoCmd(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	s := string(out)
	// With the real dataplanes on this machine the demo runs them and ends
	// with a ping between the containers' VPPs.
	dataplanes := []string{"VPP and SPDK are SIMULATED", "no ping"}
	if why := realdp.Missing(); why == "" {
		dataplanes = []string{"dataplanes: REAL VPP and SPDK", "vpp v25.02", "through the host VPP's bridge domain 4", " received, "}
	} else {
		t.Logf("simulated dataplanes: %s", why)
	}
	for _, want := range append(dataplanes,
		"embedded single-member etcd",
		`"sandbox": "/var/run/netns/uspace-demo-`,
		"the container's memif is up",
		`"Mountpoint":`,
		"cleaned up:",
	) {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// uspacectl agrees for every resource the demo made.
	for _, r := range []string{"demo-host  registered  true", "ready  true"} {
		if !strings.Contains(s, r) {
			t.Errorf("uspacectl output lacks %q", r)
		}
	}
	if left := leftovers(t); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out)
	}
}

// Ctrl-C in the middle still cleans up everything (on the simulators, the
// quick way through).
func TestDemoInterrupted(t *testing.T) {
	cmd := demoCmd(t, "USPACE_DEMO_DATAPLANES=sim")
	var buf strings.Builder
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	// A clean-up that hangs must fail the test, not the whole run.
	hung := time.AfterFunc(90*time.Second, func() { _ = cmd.Process.Kill(); pw.Close() })
	defer hung.Stop()
	sc := bufio.NewScanner(pr)
	interrupted := false
	for sc.Scan() {
		buf.WriteString(sc.Text() + "\n")
		if !interrupted && strings.Contains(sc.Text(), "the container's memif is up") {
			interrupted = true
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
		}
	}
	err := <-done
	if !interrupted {
		t.Fatalf("the demo ended before the container converged: %v\n%s", err, buf.String())
	}
	if err == nil {
		t.Errorf("the interrupted demo exited 0")
	}
	if !strings.Contains(buf.String(), "cleaned up:") || !strings.Contains(buf.String(), "deleted") {
		t.Errorf("no CNI DEL and clean-up after Ctrl-C:\n%s", buf.String())
	}
	if left := leftovers(t); len(left) > 0 {
		t.Errorf("left behind after Ctrl-C: %v", left)
	}
}
