package statedir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Dir is a host's record in a state directory, locked for its holder.
type Dir struct {
	dir, host string
	lock      *os.File
}

// Lock takes host's record in dir (made, 0700, when missing), failing at
// once when another process holds it. Close releases it; so does the
// holder's death, however it dies.
func Lock(dir, host string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory (it must be writable and outlive the agent): %w", err)
	}
	path := filepath.Join(dir, host+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory (it must be writable and outlive the agent): opening lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %s is in use by another host agent for host %s (pid %s): stop it first", dir, host, strings.TrimSpace(string(pid)))
		}
		return nil, fmt.Errorf("state directory: locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Dir{dir: dir, host: host, lock: f}, nil
}

// Close releases the lock; the lock file stays (removing it would let a
// process that opened it lock a file no one else sees).
func (d *Dir) Close() error { return d.lock.Close() }

// record is the lease file's content.
type record struct {
	Host  string `json:"host"`
	Lease string `json:"lease"` // hexadecimal, as etcdctl prints lease IDs
}

func (d *Dir) leasePath() string { return filepath.Join(d.dir, d.host+".lease") }

// Lease is the lease recorded last; 0 when there is none.
func (d *Dir) Lease() (clientv3.LeaseID, error) {
	path := d.leasePath()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("state directory: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil || r.Host != d.host {
		return 0, fmt.Errorf("state directory: %s is not the lease record of host %s (remove it to register afresh): %q", path, d.host, b)
	}
	id, err := strconv.ParseUint(r.Lease, 16, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("state directory: %s holds no lease ID (remove it to register afresh): %q", path, r.Lease)
	}
	return clientv3.LeaseID(id), nil
}

// SaveLease records lease, atomically: a crash leaves the old record or
// the new one, never a part.
func (d *Dir) SaveLease(lease clientv3.LeaseID) error {
	b, err := json.Marshal(record{Host: d.host, Lease: strconv.FormatUint(uint64(lease), 16)})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.dir, d.host+".lease.*")
	if err != nil {
		return fmt.Errorf("state directory: recording lease %x: %w", lease, err)
	}
	defer os.Remove(tmp.Name()) // fails once renamed
	_, werr := tmp.Write(append(b, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("state directory: recording lease %x: %w", lease, err)
	}
	if err := os.Rename(tmp.Name(), d.leasePath()); err != nil {
		return fmt.Errorf("state directory: recording lease %x: %w", lease, err)
	}
	return syncDir(d.dir)
}

// ForgetLease removes the record: the host's registration is over.
func (d *Dir) ForgetLease() error {
	if err := os.Remove(d.leasePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state directory: %w", err)
	}
	return syncDir(d.dir)
}

// syncDir makes a rename or remove in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("state directory: syncing %s: %w", dir, err)
	}
	return nil
}
