package spdksim

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"
	"time"
)

type bdev struct {
	name      string
	uuid      string
	blockSize uint32
	numBlocks uint64
}

var mallocCreateFields = []field{
	{"name", kString, true},
	{"uuid", kUUID, true},
	{"num_blocks", kUint64, false},
	{"block_size", kUint32, false},
	{"optimal_io_boundary", kUint32, true},
	{"md_size", kUint32, true},
	{"md_interleave", kBool, true},
	{"dif_type", kInt32, true},
	{"dif_is_head_of_md", kBool, true},
	{"physical_block_size", kUint32, true},
	{"dif_pi_format", kUint32, true},
}

func (s *Sim) findBdevLocked(name string) *bdev {
	for _, b := range s.bdevs {
		if b.name == name || strings.EqualFold(b.uuid, name) {
			return b
		}
	}
	return nil
}

func (s *Sim) bdevMallocCreate(_ *rpcConn, params json.RawMessage) (any, *rpcError) {
	a, ok := decodeObject(params, mallocCreateFields, false)
	if !ok {
		return nil, errDecode
	}
	numBlocks := a.u64("num_blocks")
	blockSize := uint32(a.u64("block_size"))
	name, hasName := a.str("name")
	if hasName && name == "" {
		return nil, errno(eINVAL)
	}
	// SPDK allocates the buffer before it validates the geometry or the
	// name: block_size 0 fails the allocation (-12), and a duplicate name
	// while memory is short gives -12 before -17 (measured on v24.09).
	hi, size := bits.Mul64(numBlocks, uint64(blockSize))
	if hi != 0 || blockSize == 0 {
		return nil, errno(eNOMEM)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var used uint64
	for _, b := range s.bdevs {
		used += b.numBlocks * uint64(b.blockSize)
	}
	if used+size > s.memLimit || used+size < used {
		return nil, errno(eNOMEM)
	}
	if numBlocks == 0 || blockSize%512 != 0 {
		return nil, errno(eINVAL)
	}
	if a.has("physical_block_size") {
		if p := uint32(a.u64("physical_block_size")); p != 0 && (p%512 != 0 || p < blockSize) {
			return nil, errno(eINVAL)
		}
	}
	if !hasName {
		// Only unnamed bdevs are numbered, and a failed attempt still uses
		// its number up (v24.09: an unnamed create after a named Malloc0
		// fails with -17, the next one is Malloc1).
		name = fmt.Sprintf("Malloc%d", s.mallocCount)
		s.mallocCount++
	}
	id, hasUUID := a.str("uuid")
	if !hasUUID {
		id = newUUID()
	}
	id = strings.ToLower(id)
	if s.findBdevLocked(name) != nil || s.findBdevLocked(id) != nil {
		return nil, errno(eEXIST)
	}
	s.bdevs = append(s.bdevs, &bdev{name: name, uuid: id, blockSize: blockSize, numBlocks: numBlocks})
	s.bumpLocked()
	s.log.Info("bdev created", "bdev", name, "num_blocks", numBlocks, "block_size", blockSize)
	return name, nil
}

func (s *Sim) bdevMallocDelete(_ *rpcConn, params json.RawMessage) (any, *rpcError) {
	a, ok := decodeObject(params, []field{{"name", kString, false}}, false)
	if !ok {
		return nil, errDecode
	}
	name, _ := a.str("name")
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.findBdevLocked(name)
	if b == nil {
		return nil, errno(eNODEV)
	}
	for i, x := range s.bdevs {
		if x == b {
			s.bdevs = append(s.bdevs[:i:i], s.bdevs[i+1:]...)
			break
		}
	}
	// Hot-remove: vhost opened the bdev without claiming it.
	for _, c := range s.ctrls {
		if c.kind == "blk" && c.bdev == b.name {
			c.bdev = ""
			s.log.Info("bdev hot-removed from blk controller", "ctrlr", c.name, "bdev", b.name)
		}
		for n, t := range c.targets {
			if t != nil && t.bdev == b.name {
				delete(s.scsiDevIDs, t.devID)
				c.targets[n] = nil
				s.log.Info("bdev hot-removed: SCSI target removed", "ctrlr", c.name, "target", n, "bdev", b.name)
			}
		}
	}
	s.bumpLocked()
	s.log.Info("bdev deleted", "bdev", b.name)
	return true, nil
}

type rateLimits struct {
	RWIOsPerSec    uint64 `json:"rw_ios_per_sec"`
	RWMBytesPerSec uint64 `json:"rw_mbytes_per_sec"`
	RMBytesPerSec  uint64 `json:"r_mbytes_per_sec"`
	WMBytesPerSec  uint64 `json:"w_mbytes_per_sec"`
}

type ioTypes struct {
	Read            bool `json:"read"`
	Write           bool `json:"write"`
	Unmap           bool `json:"unmap"`
	Flush           bool `json:"flush"`
	Reset           bool `json:"reset"`
	NVMeAdmin       bool `json:"nvme_admin"`
	NVMeIO          bool `json:"nvme_io"`
	NVMeIOMD        bool `json:"nvme_io_md"`
	WriteZeroes     bool `json:"write_zeroes"`
	Zcopy           bool `json:"zcopy"`
	GetZoneInfo     bool `json:"get_zone_info"`
	ZoneManagement  bool `json:"zone_management"`
	ZoneAppend      bool `json:"zone_append"`
	Compare         bool `json:"compare"`
	CompareAndWrite bool `json:"compare_and_write"`
	Abort           bool `json:"abort"`
	SeekHole        bool `json:"seek_hole"`
	SeekData        bool `json:"seek_data"`
	Copy            bool `json:"copy"`
	NVMeIOVMD       bool `json:"nvme_iov_md"`
}

type bdevJSON struct {
	Name               string          `json:"name"`
	Aliases            []string        `json:"aliases"`
	ProductName        string          `json:"product_name"`
	BlockSize          uint32          `json:"block_size"`
	NumBlocks          uint64          `json:"num_blocks"`
	UUID               string          `json:"uuid"`
	AssignedRateLimits rateLimits      `json:"assigned_rate_limits"`
	Claimed            bool            `json:"claimed"`
	Zoned              bool            `json:"zoned"`
	SupportedIOTypes   ioTypes         `json:"supported_io_types"`
	MemoryDomains      []memoryDomain  `json:"memory_domains"`
	DriverSpecific     json.RawMessage `json:"driver_specific"`
}

type memoryDomain struct {
	ID   string `json:"dma_device_id"`
	Type int    `json:"dma_device_type"`
}

// mallocMemoryDomains is what v24.09 reports for every malloc bdev.
var mallocMemoryDomains = []memoryDomain{{"system", 1}, {"SPDK_ACCEL_DMA_DEVICE", 2}}

func (b *bdev) json() bdevJSON {
	return bdevJSON{
		Name: b.name,
		// v24.09 lists the UUID among the aliases.
		Aliases:     []string{b.uuid},
		ProductName: "Malloc disk",
		BlockSize:   b.blockSize,
		NumBlocks:   b.numBlocks,
		UUID:        b.uuid,
		SupportedIOTypes: ioTypes{
			Read: true, Write: true, Unmap: true, Flush: true, Reset: true,
			WriteZeroes: true, Zcopy: true, Abort: true, Copy: true,
		},
		MemoryDomains:  mallocMemoryDomains,
		DriverSpecific: json.RawMessage(`{}`),
	}
}

func (s *Sim) bdevGetBdevs(rc *rpcConn, params json.RawMessage) (any, *rpcError) {
	var a args
	if params != nil {
		var ok bool
		a, ok = decodeObject(params, []field{{"name", kString, true}, {"timeout", kUint64, true}}, false)
		if !ok {
			return nil, errDecode
		}
	}
	name, byName := a.str("name")
	if !byName {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := make([]bdevJSON, 0, len(s.bdevs))
		for _, b := range s.bdevs {
			out = append(out, b.json())
		}
		return out, nil
	}
	timeout := time.Duration(a.u64("timeout")) * time.Millisecond
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		b := s.findBdevLocked(name)
		var res []bdevJSON
		if b != nil {
			res = []bdevJSON{b.json()}
		}
		ch := s.changed
		s.mu.Unlock()
		if res != nil {
			return res, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			if timeout > 0 {
				// v24.09 answers a wait that ran out with -110, not -19.
				return nil, errno(eTIMEDOUT)
			}
			return nil, errno(eNODEV)
		}
		t := time.NewTimer(left)
		select {
		case <-ch:
		case <-t.C:
		case <-rc.done:
			t.Stop()
			return nil, &rpcError{} // connection gone: no reply
		}
		t.Stop()
	}
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
