package vppstate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/schema"
)

// Memif socket filenames and socket files: ids registered in VPP, released
// with their last memif; directories and files touched only under the
// socket root. A memif's socket is either a file or an abstract socket in
// a network namespace (schema.MemifSpec), which VPP opens itself: no
// directory, no file. Ownership, what the sweep may unregister unasked:
// a file under the socket root, an abstract socket whose name starts with
// schema.AbstractSocketOwnerPrefix (the names the CNI plugin gives).

// SocketFilename is VPP's memif socket filename for spec's socket.
func SocketFilename(m *schema.MemifSpec) string {
	if name, ok := schema.AbstractSocketName(m.SocketPath); ok {
		return vpp.AbstractSocketFilename(name, m.Netns)
	}
	return m.SocketPath
}

// socketID returns the id of a memif socket filename, registering it under
// the lowest free id when it is new. Choosing the id here saves a dump per
// new socket.
func (s *State) socketID(ctx context.Context, path string) (uint32, error) {
	if id, ok := s.sockets[path]; ok {
		return id, nil
	}
	id := s.freeSocketIDs(1)[0]
	if err := s.vpp.AddMemifSocket(ctx, id, path); err != nil {
		return 0, err
	}
	s.sockets[path] = id
	return id, nil
}

// freeSocketIDs returns the n lowest socket ids no filename holds (0 is
// VPP's default socket): ids of deleted sockets are taken again, because
// VPP's main heap keeps growing with socket ids it has never seen (about
// 330 B per id on VPP 25.02, against about 60 B per cycle on one reused
// id). The view holds every id VPP has, so this is a scan, not a dump.
func (s *State) freeSocketIDs(n int) []uint32 {
	used := make(map[uint32]bool, len(s.sockets))
	for _, id := range s.sockets {
		used[id] = true
	}
	ids := make([]uint32, 0, n)
	for id := uint32(1); len(ids) < n; id++ {
		if !used[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

// PruneSockets removes every memif socket filename under the socket root
// that no memif uses: one registered for a memif whose creation then
// failed, or whose memif was deleted, before the agent could release it
// (a crash in between). Its socket file goes too when nothing listens on
// it any more (VPP leaves a deleted master's file behind); a file a peer
// listens on is the peer's. Files elsewhere are left alone: nothing says
// they are uspace's.
func (s *State) PruneSockets(ctx context.Context) error {
	used := make(map[uint32]bool, len(s.memifs))
	for _, m := range s.memifs {
		used[m.SocketID] = true
	}
	var errs []error
	for path, id := range s.sockets {
		if id == 0 || used[id] || !s.owns(path) {
			continue
		}
		if err := s.vpp.DeleteMemifSocket(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(s.sockets, path)
		if !listening(path) {
			errs = append(errs, s.removeSocketFile(path))
		}
	}
	return errors.Join(errs...)
}

// listening says whether something accepts connections on the unix
// socket file at path.
func listening(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// releaseSocket drops a memif socket filename that the memif just deleted
// was the last to use, wherever it lives (a config's own sharedDir or
// socketfile included), so socket ids do not leak. The file goes only when
// this VPP was the listening side: a slave's socket file is its peer's.
func (s *State) releaseSocket(ctx context.Context, id uint32, listener bool) error {
	for _, m := range s.memifs {
		if m.SocketID == id {
			return nil
		}
	}
	for path, sid := range s.sockets {
		// Socket id 0 is VPP's default socket; it is never ours to delete.
		if sid != id || id == 0 {
			continue
		}
		if err := s.vpp.DeleteMemifSocket(ctx, id); err != nil {
			return err
		}
		delete(s.sockets, path)
		if !listener {
			return nil
		}
		return s.removeSocketFile(path)
	}
	return nil
}

// socketDir makes the directory of a socket VPP is about to create (VPP
// itself does not), but only under the socket root: an intent cannot make
// the agent create directories anywhere else. Elsewhere (a config's own
// sharedDir) the directory must exist already.
func (s *State) socketDir(path string) error {
	if vpp.IsAbstractSocket(path) {
		return nil
	}
	dir := filepath.Dir(path)
	if s.owns(path) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create socket directory %s: %w", dir, err)
		}
		return nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("socket directory %s does not exist, and it lies outside %s, the only directory this agent creates socket directories in", dir, s.socketRoot)
	}
	return nil
}

func (s *State) owns(path string) bool {
	if vpp.IsAbstractSocket(path) {
		return strings.HasPrefix(path, vpp.AbstractSocketFilename(schema.AbstractSocketOwnerPrefix, ""))
	}
	rel, err := filepath.Rel(s.socketRoot, path)
	return s.socketRoot != "" && err == nil && !strings.HasPrefix(rel, "..")
}

func (s *State) removeSocketFile(path string) error {
	if !s.owns(path) || vpp.IsAbstractSocket(path) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove socket file %s: %w", path, err)
	}
	return nil
}
