package realdp_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/uspace-io/uspace/integration/realdp"
)

// TestSPDKKillLeavesNothing: a spdk_tgt killed (kill -9) leaves a trace
// file in /dev/shm and DPDK's runtime directory in /var/run/dpdk; Kill
// removes both, or a soak that kills SPDK hundreds of times fills them.
func TestSPDKKillLeavesNothing(t *testing.T) {
	s := realdp.StartSPDK(t, realdp.SPDKOptions{})
	pid := s.Pid()
	left := []string{fmt.Sprintf("/dev/shm/spdk_tgt_trace.pid%d", pid), fmt.Sprintf("/var/run/dpdk/spdk_pid%d", pid)}
	if _, err := os.Stat(left[1]); err != nil {
		t.Fatalf("a running spdk_tgt has no %s (%v): where does DPDK keep its runtime directory?", left[1], err)
	}
	s.Kill(t)
	for _, p := range left {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left after kill -9 (%v)", p, err)
		}
	}
}
