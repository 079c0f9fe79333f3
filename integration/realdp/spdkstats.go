package realdp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// DPDKHeap is the DPDK malloc heap of socket 0, where SPDK allocates
// malloc bdevs' memory and its own buffers, in bytes.
type DPDKHeap struct{ Size, Free, Alloc int64 }

// Heap asks spdk_tgt for its DPDK memory statistics
// (env_dpdk_get_mem_stats, which writes them to a file whose name it
// answers; 24.09 has no other RPC with them) and reads heap 0's. The
// file (tens of MB: one line per 4 KiB page without hugepages) is removed
// after.
func (s *SPDK) Heap(t testing.TB) DPDKHeap {
	t.Helper()
	// SPDK 24.09 writes every spdk_tgt's statistics to one fixed file
	// (/tmp/spdk_mem_dump.txt): another test process on this machine asking
	// its own spdk_tgt at the same time would overwrite or remove ours.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "uspace-spdk-mem-stats.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("env_dpdk_get_mem_stats: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("env_dpdk_get_mem_stats: lock %s: %v", lock.Name(), err)
	}
	var r struct {
		Filename string `json:"filename"`
	}
	if err := json.Unmarshal(s.RPC(t, "env_dpdk_get_mem_stats", nil), &r); err != nil {
		t.Fatalf("env_dpdk_get_mem_stats: %v", err)
	}
	defer os.Remove(r.Filename)
	h, err := readHeap(r.Filename)
	if err != nil {
		t.Fatalf("env_dpdk_get_mem_stats: %v", err)
	}
	return h
}

// readHeap reads "Heap id:0" and its Heap_size/Free_size/Alloc_size lines.
func readHeap(path string) (DPDKHeap, error) {
	f, err := os.Open(path)
	if err != nil {
		return DPDKHeap{}, err
	}
	defer f.Close()
	var h DPDKHeap
	fields := map[string]*int64{"Heap_size": &h.Size, "Free_size": &h.Free, "Alloc_size": &h.Alloc}
	in, seen := false, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "Heap id:") {
			in = l == "Heap id:0"
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSuffix(l, ","), ":")
		if p := fields[k]; in && ok && p != nil {
			if *p, err = strconv.ParseInt(v, 10, 64); err != nil {
				return h, fmt.Errorf("%s: %q: %w", path, l, err)
			}
			seen++
		}
	}
	if err := sc.Err(); err != nil {
		return h, fmt.Errorf("read %s: %w", path, err)
	}
	if seen != len(fields) {
		return h, fmt.Errorf("%s: no heap 0 statistics", path)
	}
	return h, nil
}
