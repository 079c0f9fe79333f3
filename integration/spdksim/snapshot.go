package spdksim

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
)

// Snapshot is the simulator's state, for assertions and --state-dump.
type Snapshot struct {
	Boot        int               `json:"boot"`
	RPCSocket   string            `json:"rpc_socket"`
	VhostDir    string            `json:"vhost_dir"`
	Bdevs       []BdevState       `json:"bdevs"`
	Controllers []ControllerState `json:"controllers"`
	// Calls counts received requests per method, over all boots.
	Calls map[string]int `json:"calls"`
}

// BdevState is one malloc bdev.
type BdevState struct {
	Name      string `json:"name"`
	UUID      string `json:"uuid"`
	BlockSize uint32 `json:"block_size"`
	NumBlocks uint64 `json:"num_blocks"`
}

// ControllerState is one vhost controller.
type ControllerState struct {
	Ctrlr      string `json:"ctrlr"`
	Type       string `json:"type"` // "blk" or "scsi"
	Socket     string `json:"socket"`
	Cpumask    string `json:"cpumask"`
	Bdev       string `json:"bdev,omitempty"` // blk; empty after hot-remove
	Readonly   bool   `json:"readonly,omitempty"`
	PackedRing bool   `json:"packed_ring,omitempty"`
	// Targets are the SCSI targets, in slot order.
	Targets []TargetState `json:"targets,omitempty"`
	// Sessions is the number of open connections to the vhost socket.
	Sessions int `json:"sessions"`
}

// TargetState is one SCSI target (one LUN 0 per target, as SPDK vhost).
type TargetState struct {
	Num  int    `json:"num"`
	Bdev string `json:"bdev"`
}

// Snapshot returns a copy of the current state.
func (s *Sim) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{
		Boot:        s.boot,
		RPCSocket:   s.opts.RPCSocket,
		VhostDir:    s.vhostDir,
		Bdevs:       []BdevState{},
		Controllers: []ControllerState{},
		Calls:       maps.Clone(s.calls),
	}
	for _, b := range s.bdevs {
		snap.Bdevs = append(snap.Bdevs, BdevState{b.name, b.uuid, b.blockSize, b.numBlocks})
	}
	for _, c := range s.ctrls {
		cs := ControllerState{
			Ctrlr: c.name, Type: c.kind, Socket: c.socket, Cpumask: fmt.Sprintf("0x%x", c.cpumask),
			Bdev: c.bdev, Readonly: c.readonly, PackedRing: c.packedRing, Sessions: len(c.sessions),
		}
		for n, t := range c.targets {
			if t != nil {
				cs.Targets = append(cs.Targets, TargetState{n, t.bdev})
			}
		}
		snap.Controllers = append(snap.Controllers, cs)
	}
	return snap
}

// SnapshotJSON is Snapshot encoded as indented JSON.
func (s *Sim) SnapshotJSON() ([]byte, error) {
	return json.MarshalIndent(s.Snapshot(), "", "  ")
}

// DumpState writes the snapshot to path atomically (write + rename).
func (s *Sim) DumpState(path string) error {
	b, err := s.SnapshotJSON()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".spdksim-state-*")
	if err != nil {
		return err
	}
	_ = tmp.Chmod(0o644)
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
