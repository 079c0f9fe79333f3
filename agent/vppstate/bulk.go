package vppstate

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/schema"
)

// CreateMissing creates, with pipelined calls rather than round trips per
// interface, the memifs of specs that VPP does not hold: socket filenames,
// then create and tag, then bridge domain membership, then admin up. It is
// what makes a resync against an emptied VPP cost about what the same
// calls cost issued straight through agent/vpp. It only gets ahead of
// Ensure, which still converges every spec afterwards and alone reports
// per-interface errors; an item that fails here is simply left for it. The
// error is one that makes the view untrustworthy (a transport failure):
// the caller must drop the view.
func (s *State) CreateMissing(ctx context.Context, specs []Spec) error {
	var todo []Spec
	for _, spec := range specs {
		if _, ok := s.byOwner[spec.Owner]; !ok && spec.Type == schema.IfTypeMemif && spec.Memif != nil {
			todo = append(todo, spec)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if err := s.addSockets(ctx, todo); err != nil {
		return err
	}
	made, err := s.createMemifs(ctx, todo)
	if err != nil {
		return err
	}
	return s.joinAndUp(ctx, made)
}

// addSockets registers, in one batch, the socket filenames of specs that
// VPP lacks, with their directories.
func (s *State) addSockets(ctx context.Context, specs []Spec) error {
	var paths []string
	// dirs: whether each socket directory is there (made if ours to make).
	newSock, dirs := map[string]bool{}, map[string]bool{}
	for _, spec := range specs {
		path := SocketFilename(spec.Memif)
		if _, ok := s.sockets[path]; ok || newSock[path] {
			continue
		}
		if !s.dirReady(dirs, path) {
			// The interface's own reconcile reports why.
			continue
		}
		newSock[path] = true
		paths = append(paths, path)
	}
	socks := make([]vpp.MemifSocket, len(paths))
	for i, id := range s.freeSocketIDs(len(paths)) {
		socks[i] = vpp.MemifSocket{ID: id, Filename: paths[i]}
	}
	failed, err := itemErrs(s.vpp.AddMemifSockets(ctx, socks))
	if err != nil {
		return err
	}
	// An id VPP refused stays free: VPP did not register it.
	for i, sk := range socks {
		if !failed(i) {
			s.sockets[sk.Filename] = sk.ID
		}
	}
	return nil
}

// dirReady says the directory of socket path is there (made if ours to
// make), remembering the answer per directory in dirs; an abstract socket
// needs none.
func (s *State) dirReady(dirs map[string]bool, path string) bool {
	if vpp.IsAbstractSocket(path) {
		return true
	}
	dir := filepath.Dir(path)
	if _, seen := dirs[dir]; !seen {
		dirs[dir] = s.socketDir(path) == nil
	}
	return dirs[dir]
}

// createdMemif is a memif made in bulk, with the spec it was made for.
type createdMemif struct {
	spec Spec
	idx  uint32
}

// createMemifs creates and tags, in one batch, the memifs of specs whose
// socket is registered.
func (s *State) createMemifs(ctx context.Context, specs []Spec) ([]createdMemif, error) {
	var mspecs []vpp.MemifSpec
	var want []Spec
	for _, spec := range specs {
		sid, ok := s.sockets[SocketFilename(spec.Memif)]
		if !ok {
			continue
		}
		mac, err := spec.mac()
		if err != nil {
			continue // Ensure reports it
		}
		mspecs = append(mspecs, spec.memif(sid, mac))
		want = append(want, spec)
	}
	mfs, err := s.vpp.CreateMemifs(ctx, mspecs)
	failed, err := itemErrs(err)
	if err != nil {
		return nil, err
	}
	var made []createdMemif
	for i, mf := range mfs {
		if failed(i) {
			continue
		}
		s.memifs[mf.SwIfIndex] = mf
		s.created(want[i].Owner, memifIf(mf))
		made = append(made, createdMemif{spec: want[i], idx: mf.SwIfIndex})
	}
	return made, nil
}

// joinAndUp puts, in batches, the memifs just made into their bridge
// domains and sets them admin up.
func (s *State) joinAndUp(ctx context.Context, made []createdMemif) error {
	var ports []vpp.BridgePort
	up := make([]uint32, 0, len(made))
	for _, m := range made {
		if want := m.spec.Bridge; want != 0 {
			if _, err := s.bridge(ctx, want); err != nil {
				return err
			}
			ports = append(ports, vpp.BridgePort{SwIfIndex: m.idx, BdID: want})
		}
		up = append(up, m.idx)
	}
	failed, err := itemErrs(s.vpp.AddToKnownBridges(ctx, ports))
	if err != nil {
		return err
	}
	for i, p := range ports {
		if !failed(i) {
			s.joined(p.SwIfIndex, p.BdID, 0, s.bds[p.BdID])
		}
	}
	if failed, err = itemErrs(s.vpp.SetAdminUps(ctx, up)); err != nil {
		return err
	}
	for i, idx := range up {
		if !failed(i) {
			iface := s.ifs[idx]
			iface.AdminUp = true
			s.ifs[idx] = iface
		}
	}
	return nil
}

// itemErrs splits a batch's outcome: per-item failures (which Ensure
// retries and reports) as a predicate, and what failed the whole batch.
func itemErrs(err error) (failed func(i int) bool, _ error) {
	var be *vpp.BatchError
	if errors.As(err, &be) {
		return func(i int) bool { return be.Errs[i] != nil }, nil
	}
	return func(int) bool { return false }, err
}
