package cluster_test

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/realdp"
)

// soakStepLimit bounds one step of the soak: a step that takes longer has
// hung, and the soak dies with every goroutine's stack.
const soakStepLimit = 5 * time.Minute

// soakConfig is one run of the soak.
type soakConfig struct {
	dur    time.Duration
	cycles int // stop once this many ADD/DEL cycles are done; 0: at dur
	seed   uint64
	real   bool // real VPPs and SPDKs instead of the simulators
}

// TestSoak loops random CNI ADD/DEL (single, in bursts, in concurrent
// ADD+DEL cycles), containers with a VPP and an agent of their own coming
// and going, direct intent changes, volume create+mount and
// unmount+remove, and faults (agents killed mid-reconcile, a host
// partitioned while its intents change, etcd members and the leader
// stopped, compaction, host and container VPPs and SPDK killed and
// restarted empty) over 3 hosts, one network of which spans them, for
// USPACE_SOAK_DURATION (or until USPACE_SOAK_CYCLES ADD/DEL cycles are
// done). After every step it checks every invariant: etcd holds exactly
// the modelled intents, every agent applied them at their latest revision,
// every VPP and SPDK holds exactly those objects, nothing is left on disk,
// the agents' goroutines and memory stay bounded; on the real dataplanes
// (USPACE_SOAK_DATAPLANES=real) also VPP's buffers, heap, interface
// indices and API clients and SPDK's memory, and a ping between live
// containers on one host and across hosts gets replies. At the end it
// removes everything and checks the dataplanes are back where they
// started. USPACE_SOAK_SEED repeats a sequence.
func TestSoak(t *testing.T) {
	durEnv := os.Getenv("USPACE_SOAK_DURATION")
	if durEnv == "" {
		t.Skip("soak mode: set USPACE_SOAK_DURATION (make soak DURATION=10m [DATAPLANES=real] [CYCLES=1000])")
	}
	cfg := soakConfig{seed: uint64(time.Now().UnixNano())}
	var err error
	if cfg.dur, err = time.ParseDuration(durEnv); err != nil {
		t.Fatalf("USPACE_SOAK_DURATION=%q: %v", durEnv, err)
	}
	if v := os.Getenv("USPACE_SOAK_CYCLES"); v != "" {
		if cfg.cycles, err = strconv.Atoi(v); err != nil {
			t.Fatalf("USPACE_SOAK_CYCLES=%q: %v", v, err)
		}
	}
	if v := os.Getenv("USPACE_SOAK_SEED"); v != "" {
		if cfg.seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("USPACE_SOAK_SEED=%q: %v", v, err)
		}
	}
	switch v := os.Getenv("USPACE_SOAK_DATAPLANES"); v {
	case "", "sim":
	case "real":
		if m := realdp.Missing(); m != "" {
			t.Fatalf("USPACE_SOAK_DATAPLANES=real: %s", m)
		}
		cfg.real = true
	default:
		t.Fatalf("USPACE_SOAK_DATAPLANES=%q: want sim or real", v)
	}
	runSoak(t, cfg)
}

// TestSoakRealBrief is the soak on the real dataplanes for two minutes:
// what `make test` runs of it. Skipped in -short, on a machine without
// VPP or SPDK, and when USPACE_SOAK_DURATION asks for TestSoak instead.
func TestSoakRealBrief(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Getenv("USPACE_SOAK_DURATION") != "" {
		t.Skip("USPACE_SOAK_DURATION is set: TestSoak runs the soak")
	}
	if m := realdp.Missing(); m != "" {
		t.Skipf("real dataplanes missing: %s", m)
	}
	runSoak(t, soakConfig{dur: 2 * time.Minute, seed: uint64(time.Now().UnixNano()), real: true})
}

func runSoak(t *testing.T, cfg soakConfig) {
	replay := fmt.Sprintf("USPACE_SOAK_SEED=%d", cfg.seed)
	if cfg.real {
		replay += " USPACE_SOAK_DATAPLANES=real"
	}
	t.Logf("soak: %v with seed %d (%s repeats it)", cfg.dur, cfg.seed, replay)
	s := newSoak(t, cfg)
	start := time.Now()
	deadline := start.Add(cfg.dur)
	step := 0
	run := func(what string, do func() string) {
		step++
		watchdog := time.AfterFunc(soakStepLimit, func() {
			panic(fmt.Sprintf("soak: step %d hung for %v (%s)", step, soakStepLimit, replay))
		})
		defer watchdog.Stop()
		did := do()
		s.check()
		t.Logf("soak: step %d (%v, %d cycles): %s", step, time.Since(start).Round(time.Second), s.cycles, did)
		if t.Failed() {
			t.Fatalf("soak: invariants broken after step %d, %s (%s)", step, what, replay)
		}
	}
	for time.Now().Before(deadline) && (cfg.cycles == 0 || s.cycles < cfg.cycles) {
		run("a random step", s.step)
	}
	run("the drain", s.drain)
	s.checkDrained()
	if t.Failed() {
		t.Fatalf("soak: the dataplanes did not come back to where they started (%s)", replay)
	}
	s.summary(time.Since(start), step)
}

func (s *soak) host() *soakHost { return s.hosts[s.rng.IntN(len(s.hosts))] }

func (s *soak) next(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%d", prefix, s.seq)
}

// soakMaxAttachments and soakMaxVolumes keep the model from growing
// without bound: above them ADD turns into DEL, create into remove.
const (
	soakMaxAttachments = 40
	soakMaxVolumes     = 12
)

// step does one random thing and says what.
func (s *soak) step() string {
	atts, vols := 0, 0
	for _, sh := range s.hosts {
		atts += len(sh.atts)
		vols += len(sh.volumes)
	}
	switch r := s.rng.IntN(100); {
	case r < 36 && atts >= soakMaxAttachments:
		return s.delBurst()
	case r < 12:
		return s.add(s.host())
	case r < 20:
		return s.burst()
	case r < 36:
		return s.churn()
	case r < 46:
		return s.del()
	case r < 52:
		return s.delBurst()
	case r < 60:
		return s.directChange(s.host())
	case r < 68 && vols >= soakMaxVolumes:
		return s.volumeRemove()
	case r < 68:
		return s.volumeCreate(s.host())
	case r < 76:
		return s.volumeRemove()
	default:
		return s.fault()
	}
}

// summary prints what the soak did and the resources at start and end,
// and writes them as a table to $USPACE_BIN_DIR/soak-summary.md.
func (s *soak) summary(took time.Duration, steps int) {
	var kinds []string
	faults := 0
	for k, n := range s.stats {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		if strings.HasPrefix(k, "fault:") {
			faults += n
		}
	}
	sort.Strings(kinds)
	s.t.Logf("soak: done after %v: %d steps, %d ADD/DEL cycles, %d faults, %d invariant checks, %d pings",
		took.Round(time.Second), steps, s.cycles, faults, s.checks, s.pings)
	s.t.Logf("soak: by kind: %s", strings.Join(kinds, " "))
	table := s.res.table(s.cycles)
	for _, l := range strings.Split(strings.TrimSpace(table), "\n") {
		s.t.Logf("soak: %s", l)
	}
	dir := os.Getenv("USPACE_BIN_DIR")
	if dir == "" {
		return
	}
	md := fmt.Sprintf("Soak on %s, seed %d: %v, %d steps, %d ADD/DEL cycles, %d faults survived, %d invariant checks, %d pings; by kind: %s.\n\n%s",
		s.res.dataplanes, s.cfg.seed, took.Round(time.Second), steps, s.cycles, faults, s.checks, s.pings, strings.Join(kinds, " "), table)
	if err := os.WriteFile(dir+"/soak-summary.md", []byte(md), 0o644); err != nil {
		s.t.Logf("soak: write summary: %v", err)
	}
}
