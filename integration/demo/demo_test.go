// Package demo_test runs `make demo`'s script so the README's main command
// cannot rot.
package demo_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
)

func TestDemoScript(t *testing.T) {
	bin := filepath.Dir(binaries.Path(t, "uspace-agent"))
	for _, b := range []string{"etcd", "etcdctl", "userspace", "uspace-vppsim", "uspace-spdksim", "uspace-volume", "uspacectl"} {
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
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{
		"VPP and SPDK are SIMULATED",
		`"sandbox": "/var/run/netns/uspace-demo-`,
		"the container's memif is up",
		`"Mountpoint":`,
		"cleaned up:",
	} {
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
	if t.Failed() {
		t.Logf("demo output:\n%s", out)
	}
}
