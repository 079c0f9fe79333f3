package statedir

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestLockIsExclusivePerHost(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	d, err := Lock(dir, "node1")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory made as %v, %v; want mode 0700", fi.Mode(), err)
	}
	_, err = Lock(dir, "node1")
	if err == nil || !strings.Contains(err.Error(), "in use by another host agent for host node1 (pid "+strconv.Itoa(os.Getpid())+")") {
		t.Fatalf("second lock: %v, want it refused naming the holder's pid", err)
	}
	other, err := Lock(dir, "node2")
	if err != nil {
		t.Fatalf("another host's record in the same directory: %v", err)
	}
	other.Close()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Lock(dir, "node1")
	if err != nil {
		t.Fatalf("lock after the holder closed it: %v", err)
	}
	again.Close()
}

func TestLeaseRecord(t *testing.T) {
	dir := t.TempDir()
	d, err := Lock(dir, "node1")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if l, err := d.Lease(); l != 0 || err != nil {
		t.Fatalf("no record yet: %x, %v", l, err)
	}
	for _, want := range []clientv3.LeaseID{0x694d7a1b2c3d4e5f, 0x7fe4a24e16118706} {
		if err := d.SaveLease(want); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Lease(); got != want || err != nil {
			t.Fatalf("lease read back %x, %v; want %x", got, err, want)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "node1.lease"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lease record: %v, %v; want mode 0600", fi, err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "node1.lease node1.lock" {
		t.Errorf("directory holds %v; want the record and the lock only (no temporary file left)", names)
	}
	if err := d.ForgetLease(); err != nil {
		t.Fatal(err)
	}
	if l, err := d.Lease(); l != 0 || err != nil {
		t.Fatalf("after ForgetLease: %x, %v", l, err)
	}
	if err := d.ForgetLease(); err != nil {
		t.Fatalf("ForgetLease without a record: %v", err)
	}
}

// A record that is not this host's lease is refused, saying which file,
// rather than taken for no lease (which would give up a live one) or for
// a lease of another host's.
func TestLeaseRecordRefusesWhatItDidNotWrite(t *testing.T) {
	dir := t.TempDir()
	d, err := Lock(dir, "node1")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, bad := range []string{"", "garbage", `{"host":"node2","lease":"694d7a1b2c3d4e5f"}`, `{"host":"node1","lease":"xyz"}`, `{"host":"node1","lease":"0"}`} {
		if err := os.WriteFile(filepath.Join(dir, "node1.lease"), []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := d.Lease()
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "node1.lease")) {
			t.Errorf("record %q: lease %x, %v; want an error naming the file", bad, l, err)
		}
	}
}
