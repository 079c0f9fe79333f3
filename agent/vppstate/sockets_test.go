package vppstate_test

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/schema"
)

func memifSpec(root string, i int) vppstate.Spec {
	return vppstate.Spec{Owner: vppstate.Owner(fmt.Sprintf("/if/%d", i)), Type: schema.IfTypeMemif,
		Memif: &schema.MemifSpec{Role: schema.MemifMaster, SocketPath: filepath.Join(root, fmt.Sprintf("c%d", i), "m.sock")}}
}

// maxSocketID is the highest memif socket id VPP holds.
func maxSocketID(t *testing.T, e *env) uint32 {
	t.Helper()
	socks, err := e.client.MemifSockets(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var top uint32
	for _, s := range socks {
		top = max(top, s.ID)
	}
	return top
}

// TestSocketIDsReused: memif sockets of containers that come and go, one
// at a time (Ensure) and in batches (CreateMissing), take the ids the
// deleted ones freed, so VPP never sees more socket ids than were in use
// at once, and (real VPP) its main heap does not grow with every cycle as
// it does for each socket id it has not seen before.
func TestSocketIDsReused(t *testing.T) {
	onBoth(t, nil, func(t *testing.T, e *env) {
		s, err := vppstate.Load(e.ctx, e.client, e.root)
		if err != nil {
			t.Fatal(err)
		}
		const batch = 4
		cycle := func(n int) {
			for c := range n {
				// Two interfaces live at once, one made alone, then a batch.
				base := c * (batch + 1)
				one := memifSpec(e.root, base)
				if _, err := s.Ensure(e.ctx, one); err != nil {
					t.Fatal(err)
				}
				var specs []vppstate.Spec
				for i := range batch {
					specs = append(specs, memifSpec(e.root, base+1+i))
				}
				if err := s.CreateMissing(e.ctx, specs); err != nil {
					t.Fatal(err)
				}
				for _, sp := range append(specs, one) {
					if _, err := s.Ensure(e.ctx, sp); err != nil {
						t.Fatal(err)
					}
					if err := s.Remove(e.ctx, sp.Owner); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		cycle(20)
		if top := maxSocketID(t, e); top != 0 {
			t.Fatalf("after every memif went, VPP still holds socket id %d", top)
		}
		// With ids never reused, these would get 101..103.
		peak := 0
		for range 3 {
			one := memifSpec(e.root, 100000+peak)
			if _, err := s.Ensure(e.ctx, one); err != nil {
				t.Fatal(err)
			}
			peak++
		}
		if top := maxSocketID(t, e); top != 3 {
			t.Errorf("3 sockets in use after 100 made and deleted: highest id %d, want 3 (the lowest free ids)", top)
		}
		for i := range peak {
			if err := s.Remove(e.ctx, memifSpec(e.root, 100000+i).Owner); err != nil {
				t.Fatal(err)
			}
		}
		if e.real == nil {
			return
		}
		// VPP prints its heap to 3 digits (10 KiB here): enough cycles
		// that a few hundred bytes each would show.
		const cycles = 300
		before, err := e.real.HeapUsed()
		if err != nil {
			t.Fatal(err)
		}
		cycle(cycles / (batch + 1))
		after, err := e.real.HeapUsed()
		if err != nil {
			t.Fatal(err)
		}
		per := float64(after-before) / cycles
		t.Logf("main heap %d -> %d B over %d memif cycles: %+.0f B/cycle", before, after, cycles, per)
		if per > 150 {
			t.Errorf("VPP's main heap grows %+.0f B per memif ADD/DEL cycle, want at most 150 (a new socket id costs about 330)", per)
		}
	})
}

// An agent killed between deleting a master memif and releasing its
// socket leaves the filename registered and the socket file on disk (VPP
// leaves a deleted master's file behind). The next agent's prune removes
// both; a socket filename whose file a peer listens on loses only its
// registration.
func TestPruneRemovesStaleSocketFile(t *testing.T) {
	onBoth(t, nil, func(t *testing.T, e *env) {
		s, err := vppstate.Load(e.ctx, e.client, e.root)
		if err != nil {
			t.Fatal(err)
		}
		stale := memifSpec(e.root, 1)
		idx, err := s.Ensure(e.ctx, stale)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.client.DeleteMemif(e.ctx, idx); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(stale.Memif.SocketPath); err != nil {
			t.Fatalf("VPP removed the socket file of a deleted master: %v", err)
		}
		peer := filepath.Join(e.root, "peer.sock")
		l, err := net.Listen("unix", peer)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := e.client.AddMemifSocket(e.ctx, 9, peer); err != nil {
			t.Fatal(err)
		}
		if s, err = vppstate.Load(e.ctx, e.client, e.root); err != nil {
			t.Fatal(err)
		}
		if err := s.PruneSockets(e.ctx); err != nil {
			t.Fatal(err)
		}
		if top := maxSocketID(t, e); top != 0 {
			t.Errorf("after the prune VPP holds socket id %d", top)
		}
		if _, err := os.Stat(stale.Memif.SocketPath); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale socket file %s left after the prune: %v", stale.Memif.SocketPath, err)
		}
		if _, err := os.Stat(peer); err != nil {
			t.Errorf("the prune removed %s, which a peer listens on: %v", peer, err)
		}
	})
}
