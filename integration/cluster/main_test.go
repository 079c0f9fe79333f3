// Package cluster_test runs uspace the way it is deployed: a 3-member etcd
// cluster (go.etcd.io/etcd/tests/v3), several simulated hosts, each with its
// own host agent process, VPP simulator and SPDK simulator, container agents
// with VPP simulators of their own, the real `userspace` CNI plugin invoked
// through libcni into network namespaces, and uspacectl. It injects faults
// (etcd members stopped, the leader killed, a host partitioned from etcd,
// agents killed mid-reconcile, compaction and defragmentation, a host
// removed) and asserts after each that every host's dataplane holds exactly
// what its intents say: nothing lost, nothing duplicated, nothing of
// another host's.
//
// Only loopback is used: a partition is a per-host TCP forwarder on
// 127.0.0.1 between that host's agent and the etcd members, which the test
// cuts and heals.
//
// TestSoak loops random operations and faults for USPACE_SOAK_DURATION
// (`make soak DURATION=10m`); it is skipped otherwise.
package cluster_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) {
	// The CNI plugin reads /etc/uspace/uspace.conf unless USPACE_CONFIG
	// says otherwise: the machine's own config must not leak into a test.
	dir, err := os.MkdirTemp("", "uspace-cluster-conf-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	empty := filepath.Join(dir, "uspace.conf")
	if err := os.WriteFile(empty, []byte("{}"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("USPACE_CONFIG", empty)
	os.Unsetenv("USPACE_HOST")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
