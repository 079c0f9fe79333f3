package spdksim

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const maxTgts = 8 // SPDK_VHOST_SCSI_CTRLR_MAX_DEVS

type scsiTarget struct {
	devID int
	bdev  string
}

type controller struct {
	name       string
	kind       string // "blk" or "scsi"
	cpumask    uint64
	socket     string
	readonly   bool
	packedRing bool
	transport  string
	bdev       string // blk: "" after the bdev was hot-removed
	targets    [maxTgts]*scsiTarget

	ln       *net.UnixListener
	sessions map[net.Conn]struct{}
}

// parseCpumask accepts what spdk_cpuset_parse does: a hex mask with or
// without 0x, or a bracketed list of cores and ranges ("[0,2-3]").
func parseCpumask(str string) (uint64, bool) {
	str = strings.TrimSpace(str)
	if strings.HasPrefix(str, "[") {
		if !strings.HasSuffix(str, "]") {
			return 0, false
		}
		var m uint64
		for _, part := range strings.Split(str[1:len(str)-1], ",") {
			lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
			l, err := strconv.Atoi(strings.TrimSpace(lo))
			if err != nil || l < 0 || l > 63 {
				return 0, false
			}
			h := l
			if isRange {
				if h, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil || h < l || h > 63 {
					return 0, false
				}
			}
			for i := l; i <= h; i++ {
				m |= 1 << i
			}
		}
		return m, true
	}
	str = strings.TrimPrefix(strings.TrimPrefix(str, "0x"), "0X")
	m, err := strconv.ParseUint(str, 16, 64)
	return m, err == nil
}

// coreMask resolves a controller cpumask (vhost_parse_core_mask): default
// the app core mask; otherwise a non-empty subset of it.
func (s *Sim) coreMask(a args) (uint64, bool) {
	str, ok := a.str("cpumask")
	if !ok {
		return s.opts.CoreMask, true
	}
	m, ok := parseCpumask(str)
	if !ok || m == 0 || m&^s.opts.CoreMask != 0 {
		return 0, false
	}
	return m, true
}

func (s *Sim) findCtrlLocked(name string) *controller {
	for _, c := range s.ctrls {
		if c.name == name {
			return c
		}
	}
	return nil
}

// registerLocked creates the controller socket and adds c.
func (s *Sim) registerLocked(c *controller) *rpcError {
	if s.findCtrlLocked(c.name) != nil {
		return vhostErr(eEXIST)
	}
	c.socket = filepath.Join(s.vhostDir, c.name)
	if c.name == "" || len(c.socket) > 107 {
		return vhostErr(eIO)
	}
	if fi, err := os.Lstat(c.socket); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			s.log.Warn("cannot create vhost socket: path exists and is not a socket", "path", c.socket)
			return vhostErr(eIO)
		}
		if err := os.Remove(c.socket); err != nil {
			return vhostErr(eIO)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: c.socket, Net: "unix"})
	if err != nil {
		s.log.Warn("cannot create vhost socket", "path", c.socket, "err", err)
		return vhostErr(eIO)
	}
	c.ln = ln
	c.sessions = map[net.Conn]struct{}{}
	s.ctrls = append(s.ctrls, c)
	s.wg.Add(1)
	go s.vhostAccept(c, ln)
	s.bumpLocked()
	s.log.Info("vhost controller created", "ctrlr", c.name, "type", c.kind, "socket", c.socket)
	return nil
}

func (s *Sim) vhostAccept(c *controller, ln *net.UnixListener) {
	defer s.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if c.ln != ln {
			s.mu.Unlock()
			conn.Close()
			return
		}
		c.sessions[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			drain(conn)
			conn.Close()
			s.mu.Lock()
			delete(c.sessions, conn)
			s.mu.Unlock()
		}()
	}
}

// closeSocket stops listening; remove decides whether the socket file goes
// too (clean stop) or stays stale (crash). Called with s.mu held.
func (c *controller) closeSocket(remove bool) {
	if c.ln == nil {
		return
	}
	c.ln.SetUnlinkOnClose(remove)
	c.ln.Close()
	c.ln = nil
	for conn := range c.sessions {
		conn.Close()
	}
}

var blkCreateFields = []field{
	{"ctrlr", kString, false},
	{"dev_name", kString, false},
	{"cpumask", kString, true},
	{"readonly", kBool, true},
	{"packed_ring", kBool, true},
	{"transport", kString, true},
}

func (s *Sim) vhostCreateBlkController(_ *rpcConn, params json.RawMessage) (any, *rpcError) {
	a, ok := decodeObject(params, blkCreateFields, true)
	if !ok {
		return nil, vhostErr(eINVAL)
	}
	name, _ := a.str("ctrlr")
	devName, _ := a.str("dev_name")
	transport, hasTransport := a.str("transport")
	if !hasTransport {
		transport = "vhost_user_blk"
	}
	if transport != "vhost_user_blk" {
		return nil, vhostErr(eINVAL)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.findBdevLocked(devName)
	if b == nil {
		return nil, vhostErr(eNODEV)
	}
	mask, ok := s.coreMask(a)
	if !ok {
		return nil, vhostErr(eINVAL)
	}
	c := &controller{
		name: name, kind: "blk", cpumask: mask, transport: transport,
		readonly: a.boolean("readonly"), packedRing: a.boolean("packed_ring"), bdev: b.name,
	}
	if err := s.registerLocked(c); err != nil {
		return nil, err
	}
	return true, nil
}

func (s *Sim) vhostCreateScsiController(_ *rpcConn, params json.RawMessage) (any, *rpcError) {
	a, ok := decodeObject(params, []field{{"ctrlr", kString, false}, {"cpumask", kString, true}, {"delay", kBool, true}}, false)
	if !ok {
		return nil, vhostErr(eINVAL)
	}
	name, _ := a.str("ctrlr")
	s.mu.Lock()
	defer s.mu.Unlock()
	mask, ok := s.coreMask(a)
	if !ok {
		return nil, vhostErr(eINVAL)
	}
	if err := s.registerLocked(&controller{name: name, kind: "scsi", cpumask: mask}); err != nil {
		return nil, err
	}
	return true, nil
}

func (s *Sim) vhostScsiControllerAddTarget(_ *rpcConn, params json.RawMessage) (any, *rpcError) {
	a, ok := decodeObject(params, []field{{"ctrlr", kString, false}, {"scsi_target_num", kInt32, false}, {"bdev_name", kString, false}}, false)
	if !ok {
		return nil, vhostErr(eINVAL)
	}
	name, _ := a.str("ctrlr")
	bdevName, _ := a.str("bdev_name")
	num := int(a.i64("scsi_target_num"))
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.findCtrlLocked(name)
	if c == nil {
		return nil, vhostErr(eNODEV)
	}
	if c.kind != "scsi" {
		return nil, vhostErr(eINVAL)
	}
	if num < 0 {
		num = -1
		for i, t := range c.targets {
			if t == nil {
				num = i
				break
			}
		}
		if num < 0 {
			return nil, vhostErr(eNOSPC)
		}
	} else if num >= maxTgts {
		return nil, vhostErr(eINVAL)
	}
	if c.targets[num] != nil {
		return nil, vhostErr(eEXIST)
	}
	b := s.findBdevLocked(bdevName)
	if b == nil {
		// spdk_scsi_dev_construct_ext fails -> -EINVAL, not -ENODEV.
		return nil, vhostErr(eINVAL)
	}
	devID := 0
	for s.scsiDevIDs[devID] {
		devID++
	}
	s.scsiDevIDs[devID] = true
	c.targets[num] = &scsiTarget{devID: devID, bdev: b.name}
	s.bumpLocked()
	s.log.Info("SCSI target added", "ctrlr", name, "target", num, "bdev", b.name)
	return num, nil
}

func (s *Sim) vhostScsiControllerRemoveTarget(_ *rpcConn, params json.RawMessage) (any, *rpcError) {
	a, ok := decodeObject(params, []field{{"ctrlr", kString, false}, {"scsi_target_num", kUint32, false}}, false)
	if !ok {
		return nil, vhostErr(eINVAL)
	}
	name, _ := a.str("ctrlr")
	num := a.u64("scsi_target_num")
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.findCtrlLocked(name)
	if c == nil {
		return nil, vhostErr(eNODEV)
	}
	if num >= maxTgts || c.kind != "scsi" {
		return nil, vhostErr(eINVAL)
	}
	t := c.targets[num]
	if t == nil {
		// spdk_vhost_scsi_dev_remove_tgt: status != PRESENT -> -EBUSY.
		return nil, vhostErr(eBUSY)
	}
	delete(s.scsiDevIDs, t.devID)
	c.targets[num] = nil
	s.bumpLocked()
	s.log.Info("SCSI target removed", "ctrlr", name, "target", num)
	return true, nil
}

func (s *Sim) vhostDeleteController(_ *rpcConn, params json.RawMessage) (any, *rpcError) {
	a, ok := decodeObject(params, []field{{"ctrlr", kString, false}}, false)
	if !ok {
		return nil, vhostErr(eINVAL)
	}
	name, _ := a.str("ctrlr")
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.findCtrlLocked(name)
	if c == nil {
		return nil, vhostErr(eNODEV)
	}
	// v24.09 removes the targets of a SCSI controller with it and answers
	// true (measured), although its source reads as if it refused.
	for n, t := range c.targets {
		if t != nil {
			delete(s.scsiDevIDs, t.devID)
			c.targets[n] = nil
		}
	}
	c.closeSocket(true)
	for i, x := range s.ctrls {
		if x == c {
			s.ctrls = append(s.ctrls[:i:i], s.ctrls[i+1:]...)
			break
		}
	}
	s.bumpLocked()
	s.log.Info("vhost controller deleted", "ctrlr", name)
	return true, nil
}

type blkBackend struct {
	Readonly  bool    `json:"readonly"`
	Bdev      *string `json:"bdev"`
	Transport string  `json:"transport"`
}

type scsiLunJSON struct {
	ID       int    `json:"id"`
	BdevName string `json:"bdev_name"`
}

type scsiTargetJSON struct {
	ScsiDevNum int           `json:"scsi_dev_num"`
	ID         int           `json:"id"`
	TargetName string        `json:"target_name"`
	Luns       []scsiLunJSON `json:"luns"`
}

type backendJSON struct {
	Block *blkBackend       `json:"block,omitempty"`
	Scsi  *[]scsiTargetJSON `json:"scsi,omitempty"`
}

type ctrlrJSON struct {
	Ctrlr           string      `json:"ctrlr"`
	Cpumask         string      `json:"cpumask"`
	DelayBaseUs     uint32      `json:"delay_base_us"`
	IopsThreshold   uint32      `json:"iops_threshold"`
	Socket          string      `json:"socket"`
	Sessions        []any       `json:"sessions"`
	BackendSpecific backendJSON `json:"backend_specific"`
}

func (c *controller) json() ctrlrJSON {
	out := ctrlrJSON{
		Ctrlr:         c.name,
		Cpumask:       fmt.Sprintf("0x%x", c.cpumask),
		IopsThreshold: 60000,
		Socket:        c.socket,
		Sessions:      []any{},
	}
	if c.kind == "blk" {
		bb := &blkBackend{Readonly: c.readonly, Transport: c.transport}
		if c.bdev != "" {
			name := c.bdev
			bb.Bdev = &name
		}
		out.BackendSpecific.Block = bb
		return out
	}
	tgts := []scsiTargetJSON{}
	for n, t := range c.targets {
		if t == nil {
			continue
		}
		tgts = append(tgts, scsiTargetJSON{
			ScsiDevNum: n, ID: t.devID, TargetName: fmt.Sprintf("Target %d", n),
			Luns: []scsiLunJSON{{ID: 0, BdevName: t.bdev}},
		})
	}
	out.BackendSpecific.Scsi = &tgts
	return out
}

func (s *Sim) vhostGetControllers(_ *rpcConn, params json.RawMessage) (any, *rpcError) {
	var a args
	if params != nil {
		var ok bool
		if a, ok = decodeObject(params, []field{{"name", kString, true}}, false); !ok {
			return nil, &rpcError{codeInternalError, strerror[eINVAL]}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name, ok := a.str("name"); ok {
		c := s.findCtrlLocked(name)
		if c == nil {
			return nil, &rpcError{codeInternalError, strerror[eNODEV]}
		}
		return []ctrlrJSON{c.json()}, nil
	}
	out := make([]ctrlrJSON, 0, len(s.ctrls))
	for _, c := range s.ctrls {
		out = append(out, c.json())
	}
	return out, nil
}
