package realdp

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Where `make dataplanes` installs the prebuilt releases.
const (
	installedVPP  = "/opt/vpp-25.02/bin/vpp"
	installedSPDK = "/opt/uspace-dp/spdk-24.09/bin/spdk_tgt"
)

var (
	findOnce sync.Once
	vppBin   string
	vppErr   error
	spdkBin  string
	spdkErr  error
)

// find resolves a binary: the env override, PATH, then the install location.
func find(env, name, installed string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", env, p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(installed); err == nil {
		return installed, nil
	}
	return "", fmt.Errorf("no %s: not in %s, not on PATH, not at %s (run `make dataplanes`)", name, env, installed)
}

func binaries() {
	findOnce.Do(func() {
		vppBin, vppErr = find("USPACE_VPP_BIN", "vpp", installedVPP)
		spdkBin, spdkErr = find("USPACE_SPDK_BIN", "spdk_tgt", installedSPDK)
	})
}

// NeedVPP skips the test, in one line, when no real VPP is on this machine.
func NeedVPP(t testing.TB) {
	t.Helper()
	binaries()
	if vppErr != nil {
		t.Skipf("real VPP missing: %v", vppErr)
	}
}

// NeedSPDK skips the test, in one line, when no real SPDK is on this machine.
func NeedSPDK(t testing.TB) {
	t.Helper()
	binaries()
	if spdkErr != nil {
		t.Skipf("real SPDK missing: %v", spdkErr)
	}
}
