package cluster_test

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/uspace-io/uspace/integration/dpview"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/integration/vppsim"
)

// Resource bounds. A leak of a few hundred bytes per cycle passes a short
// run, but not the 1,000 cycles the soak is recorded with.
const (
	// bufSlack: buffers in use beyond the memif rings, at a quiescent
	// moment (in flight, in a per-node frame).
	bufSlack = 128
	// heapSlack and heapPerCycle bound VPP's main-heap growth: vectors
	// sized by the highest index seen grow once, a leak with every cycle.
	heapSlack    = 8 << 20
	heapPerCycle = 4 << 10
	// idxSlack: interfaces that came and went between two checks (a burst
	// of concurrent ADD+DEL cycles, the probes) may have pushed the
	// highest sw_if_index above the most ever seen at a check.
	idxSlack = 16
	// spdkSlack: SPDK's DPDK heap with no volume, against its start; a
	// volume's own memory (its malloc bdev) and spdkPerVolume beside.
	spdkSlack     = 1 << 20
	spdkPerVolume = 1 << 20
	// Agents: goroutines and RSS above their first measure.
	goroutineSlack = 100
	rssSlack       = 64 << 20
)

// resources follows the resources of every dataplane and agent of the
// soak from a baseline taken before the first step.
type resources struct {
	s          *soak
	dataplanes string
	vpps       map[string]*vppTrack   // by "<host> VPP" / "<container> VPP"
	spdks      map[string]*spdkTrack  // by host
	agents     map[string]*agentTrack // by "<host> host agent" / container
	// states are the VPP states the last model check read, by host and
	// container; dirty marks the hosts whose SPDK a step touched.
	states map[string]vppsim.State
	dirty  map[*soakHost]bool
}

// vppFigures are a real VPP's resources at one moment.
type vppFigures struct {
	ifs      int
	maxIdx   uint32
	slaves   int // memif slaves: each holds a ring of buffers once connected
	bufUsed  int
	heap     int64
	clients  []string
	measured bool
}

type vppTrack struct {
	start, last vppFigures
	peakIfs     int
}

type spdkTrack struct{ start, last realdp.DPDKHeap }

type agentTrack struct {
	start, last agentFigures
}

type agentFigures struct {
	goroutines int // -1: not exported (container agents)
	rss        int64
}

func newResources(s *soak) *resources {
	r := &resources{s: s, vpps: map[string]*vppTrack{}, spdks: map[string]*spdkTrack{}, agents: map[string]*agentTrack{},
		states: map[string]vppsim.State{}, dirty: map[*soakHost]bool{}}
	s.res = r
	for _, sh := range s.hosts {
		r.dirty[sh] = true
	}
	s.warmUp()
	t := s.t
	if !s.cfg.real {
		r.dataplanes = "vppsim and spdksim (the simulators)"
	} else {
		h := s.hosts[0].h
		r.dataplanes = fmt.Sprintf("real %s (3 host VPPs, every container's VPP) and %s (3 spdk_tgt)",
			h.RealVPP.Version(t), h.RealSPDK.Version(t))
	}
	t.Logf("soak: dataplanes: %s", r.dataplanes)
	r.check()
	return r
}

// check measures every resource and asserts its bound; the first measure
// of each is its baseline.
func (r *resources) check() {
	s := r.s
	var vpps []vppMeasure
	for _, sh := range s.hosts {
		r.checkAgent(sh.h.Name+" host agent", hostAgentFigures(s, sh.h))
		for _, l := range sh.live() {
			r.checkAgent(l.id+" container agent", agentFigures{goroutines: -1, rss: procRSS(s, l.c.Agent.Pid())})
		}
		if !s.cfg.real {
			continue
		}
		vpps = append(vpps, vppMeasure{who: sh.h.Name + " VPP", st: r.states[sh.h.Name], v: sh.h.RealVPP, agent: "uspace-host-agent", lasting: true})
		for _, l := range sh.live() {
			vpps = append(vpps, vppMeasure{who: l.id + " VPP", st: r.states[l.id], v: l.c.RealVPP, agent: "uspace-container-agent", lasting: l == sh.app})
		}
	}
	// The CLI answers slowly on a loaded machine: every VPP at once.
	for i, err := range parallel(len(vpps), func(i int) (err error) {
		vpps[i].f, err = measureVPP(vpps[i].st, vpps[i].v)
		return err
	}) {
		if err != nil {
			s.t.Fatalf("%s: %v", vpps[i].who, err)
		}
		r.checkVPP(vpps[i])
	}
	for _, sh := range s.hosts {
		if s.cfg.real && r.dirty[sh] {
			r.checkSPDK(sh)
			delete(r.dirty, sh)
		}
	}
}

func (r *resources) checkAgent(who string, f agentFigures) {
	t := r.s.t
	tr := r.agents[who]
	if tr == nil {
		tr = &agentTrack{start: f}
		r.agents[who] = tr
	}
	tr.last = f
	if f.goroutines > tr.start.goroutines+goroutineSlack {
		t.Errorf("%s: %d goroutines, %d at start", who, f.goroutines, tr.start.goroutines)
	}
	if f.rss > tr.start.rss+rssSlack {
		t.Errorf("%s: RSS %s, %s at start", who, mib(f.rss), mib(tr.start.rss))
	}
	r.s.checks++
}

var metricLine = regexp.MustCompile(`(?m)^(go_goroutines|process_resident_memory_bytes) ([0-9.e+]+)$`)

// hostAgentFigures reads a host agent's /metrics.
func hostAgentFigures(s *soak, h *harness.Host) agentFigures {
	f := agentFigures{}
	for _, m := range metricLine.FindAllStringSubmatch(harness.HTTPGet(s.t, "http://"+h.MetricsAddr+"/metrics"), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		if m[1] == "go_goroutines" {
			f.goroutines = int(v)
		} else {
			f.rss = int64(v)
		}
	}
	return f
}

// procRSS is a process's resident set (VmRSS of /proc/<pid>/status).
func procRSS(s *soak, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		s.t.Fatalf("RSS of process %d: %v", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	s.t.Fatalf("RSS of process %d: no VmRSS", pid)
	return 0
}

// shownName is a binary-API client's name as VPP lists it: its first 20
// characters.
func shownName(name string) string { return name[:min(len(name), 20)] }

// vppMeasure is one real VPP to measure: its name, its state as the model
// check just read it, the agent that must be its only client, whether it
// lives through the soak, and its figures once measured.
type vppMeasure struct {
	who     string
	st      vppsim.State
	v       *realdp.VPP
	agent   string
	lasting bool
	f       vppFigures
}

// measureVPP reads a real VPP's resources.
func measureVPP(st vppsim.State, v *realdp.VPP) (vppFigures, error) {
	f := vppFigures{ifs: len(st.Interfaces), measured: true}
	for _, i := range st.Interfaces {
		f.maxIdx = max(f.maxIdx, i.SwIfIndex)
	}
	for _, m := range st.Memifs {
		if m.Role == "slave" {
			f.slaves++
		}
	}
	b, err := v.Buffers()
	if err != nil {
		return f, err
	}
	f.bufUsed = b.Used()
	if f.heap, err = v.HeapUsed(); err != nil {
		return f, err
	}
	clients, err := v.APIClients()
	for _, c := range clients {
		if c != shownName(dpview.ClientName) {
			f.clients = append(f.clients, c)
		}
	}
	return f, err
}

// checkVPP asserts a real VPP's bounds: only its agent connected, no
// buffer in use beyond its connected memif slaves' rings, and, for a VPP
// that lives through the soak, a main heap within its bound of the start
// and no sw_if_index above what reuse explains.
func (r *resources) checkVPP(m vppMeasure) {
	s, t, f, who := r.s, r.s.t, m.f, m.who
	tr := r.vpps[who]
	if tr == nil {
		tr = &vppTrack{start: f}
		r.vpps[who] = tr
	}
	tr.last, tr.peakIfs = f, max(tr.peakIfs, f.ifs)
	if !slices.Equal(f.clients, []string{shownName(m.agent)}) {
		t.Errorf("%s: binary-API clients %v, want only %s", who, f.clients, m.agent)
	}
	// What a VPP holds for good (an af_packet uplink's rings) is in its
	// start's figure; a short-lived VPP is first measured with its memif
	// connected, so its start says nothing.
	base := 0
	if m.lasting {
		base = tr.start.bufUsed
	}
	if limit := base + bufSlack + soakRingBuffers*f.slaves; f.bufUsed > limit {
		t.Errorf("%s: %d buffers in use, at most %d expected (%d at start, %d memif slaves)", who, f.bufUsed, limit, base, f.slaves)
	}
	s.checks += 2
	if !m.lasting {
		return
	}
	if limit := tr.start.heap + heapSlack + heapPerCycle*int64(s.cycles); f.heap > limit {
		t.Errorf("%s: main heap %s used, %s at start: more than %s + %s per cycle over %d cycles",
			who, mib(f.heap), mib(tr.start.heap), mib(heapSlack), kib(heapPerCycle), s.cycles)
	}
	if f.maxIdx > uint32(tr.peakIfs+idxSlack) {
		t.Errorf("%s: sw_if_index %d in use with at most %d interfaces seen at once: indices are not reused", who, f.maxIdx, tr.peakIfs)
	}
	s.checks += 2
}

// checkSPDK asserts that a real SPDK's DPDK heap holds no more than its
// start plus the modelled volumes. Reading it costs spdk_tgt a dump of
// tens of MB, so it is read after the steps that touched the host's SPDK
// (a volume created or removed, SPDK or the host agent killed, the host
// partitioned) and at the end.
func (r *resources) checkSPDK(sh *soakHost) {
	s, t := r.s, r.s.t
	h := sh.h.RealSPDK.Heap(t)
	tr := r.spdks[sh.h.Name]
	if tr == nil {
		tr = &spdkTrack{start: h}
		r.spdks[sh.h.Name] = tr
	}
	tr.last = h
	limit := tr.start.Alloc + spdkSlack + int64(len(sh.volumes))*(1<<20+spdkPerVolume)
	if h.Alloc > limit {
		t.Errorf("%s SPDK: DPDK heap %s allocated with %d volumes, %s at start", sh.h.Name, mib(h.Alloc), len(sh.volumes), mib(tr.start.Alloc))
	}
	s.checks++
}

// checkDrained asserts, after the drain, that every dataplane is back
// where it started: the VPPs hold their start's interfaces and buffers,
// SPDK its start's memory, and no status or membership is left.
func (s *soak) checkDrained() {
	s.drainedStatuses()
	if !s.cfg.real {
		return
	}
	for who, tr := range s.res.vpps {
		if !tr.last.measured || !strings.HasPrefix(who, "node") && !strings.HasPrefix(who, "app-") {
			continue
		}
		if tr.last.ifs != tr.start.ifs || tr.last.bufUsed > tr.start.bufUsed+bufSlack {
			s.t.Errorf("%s after the drain: %d interfaces, %d buffers in use; at start %d and %d",
				who, tr.last.ifs, tr.last.bufUsed, tr.start.ifs, tr.start.bufUsed)
		}
	}
	for host, tr := range s.res.spdks {
		if tr.last.Alloc > tr.start.Alloc+spdkSlack {
			s.t.Errorf("%s SPDK after the drain: DPDK heap %s allocated, %s at start", host, mib(tr.last.Alloc), mib(tr.start.Alloc))
		}
	}
}

// table is the resources at start and at the end (after the drain), one
// column per host, in markdown.
func (r *resources) table(cycles int) string {
	perCycle := func(d int64) string {
		if cycles == 0 {
			return ""
		}
		return fmt.Sprintf(" (%+.0f B/cycle)", float64(d)/float64(cycles))
	}
	type row struct {
		what string
		cell func(host, app string) string
	}
	vppRows := func(who string, which func(host, app string) string) []row {
		return []row{
			{who + " VPP: interfaces (highest sw_if_index)", func(h, a string) string {
				tr := r.vpps[which(h, a)+" VPP"]
				return fmt.Sprintf("%d → %d (%d → %d)", tr.start.ifs, tr.last.ifs, tr.start.maxIdx, tr.last.maxIdx)
			}},
			{who + " VPP: buffers in use", func(h, a string) string {
				tr := r.vpps[which(h, a)+" VPP"]
				return fmt.Sprintf("%d → %d", tr.start.bufUsed, tr.last.bufUsed)
			}},
			{who + " VPP: main heap used", func(h, a string) string {
				tr := r.vpps[which(h, a)+" VPP"]
				return fmt.Sprintf("%s → %s%s", mib(tr.start.heap), mib(tr.last.heap), perCycle(tr.last.heap-tr.start.heap))
			}},
			{who + " VPP: binary-API clients", func(h, a string) string {
				tr := r.vpps[which(h, a)+" VPP"]
				return strings.Join(tr.start.clients, " ") + " → " + strings.Join(tr.last.clients, " ")
			}},
		}
	}
	var rows []row
	if r.s.cfg.real {
		rows = append(vppRows("host", func(h, _ string) string { return h }), vppRows("app container", func(_, a string) string { return a })...)
		rows = append(rows, row{"SPDK: DPDK heap allocated", func(h, _ string) string {
			tr := r.spdks[h]
			return fmt.Sprintf("%s → %s%s", mib(tr.start.Alloc), mib(tr.last.Alloc), perCycle(tr.last.Alloc-tr.start.Alloc))
		}})
	}
	rows = append(rows,
		row{"host agent: goroutines", func(h, _ string) string {
			tr := r.agents[h+" host agent"]
			return fmt.Sprintf("%d → %d", tr.start.goroutines, tr.last.goroutines)
		}},
		row{"host agent: RSS", func(h, _ string) string {
			tr := r.agents[h+" host agent"]
			return mib(tr.start.rss) + " → " + mib(tr.last.rss)
		}},
		row{"app container agent: RSS", func(_, a string) string {
			tr := r.agents[a+" container agent"]
			return mib(tr.start.rss) + " → " + mib(tr.last.rss)
		}})
	var b strings.Builder
	b.WriteString("| at start → at the end |")
	for _, sh := range r.s.hosts {
		b.WriteString(" " + sh.h.Name + " |")
	}
	b.WriteString("\n| --- |" + strings.Repeat(" ---: |", len(r.s.hosts)) + "\n")
	for _, rw := range rows {
		b.WriteString("| " + rw.what + " |")
		for _, sh := range r.s.hosts {
			b.WriteString(" " + rw.cell(sh.h.Name, sh.app.id) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

func kib(n int64) string { return fmt.Sprintf("%d KiB", n>>10) }
