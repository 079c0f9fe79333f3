package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Row is one line of the results: a latency distribution, a rate or a
// count, with the floor it is compared to.
//
// Ratio is always "how many floors": P50 / Floor for latencies and counts,
// Floor / P50 for rates (a throughput at half its floor has ratio 2), so a
// ratio above 1 always means "costs more than the floor". Floor rows have
// Floor == P50 and Ratio 1. Rows whose floor is zero (idle reads: the floor
// is "none at all") have no ratio.
type Row struct {
	Name string `json:"name"`
	// Kind is floor, latency, value or rate.
	Kind string `json:"kind"`
	Unit string `json:"unit"`
	// N is how many samples the distribution holds (1 for a single
	// measurement).
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Mean float64 `json:"mean,omitempty"`
	// Floor is the floor's p50 (or value), FloorP99 its p99 where the floor
	// is a distribution; FloorOf names it ("a+b+c").
	Floor    float64  `json:"floor"`
	FloorP99 float64  `json:"floorP99,omitempty"`
	FloorOf  string   `json:"floorOf,omitempty"`
	Ratio    *float64 `json:"ratio,omitempty"`
	RatioP99 *float64 `json:"ratioP99,omitempty"`
	// Target is the target in words; Holds whether this run met it.
	Target string `json:"target,omitempty"`
	Holds  *bool  `json:"holds,omitempty"`
	Note   string `json:"note,omitempty"`
	floor  bool
	rate   bool
}

// Results collects rows and notes from every phase.
type Results struct {
	mu      sync.Mutex
	Mode    string         `json:"mode"`
	Started time.Time      `json:"started"`
	Took    string         `json:"took"`
	Machine map[string]any `json:"machine"`
	Config  map[string]any `json:"config"`
	Rows    []*Row         `json:"rows"`
	Notes   []string       `json:"notes"`
}

func (r *Results) add(row *Row) *Row {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Rows = append(r.Rows, row)
	return row
}

func (r *Results) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *Results) row(name string) *Row {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, row := range r.Rows {
		if row.Name == name {
			return row
		}
	}
	return nil
}

// dist is a sorted sample of durations.
type dist []time.Duration

func newDist(xs []time.Duration) dist {
	d := slices.Clone(xs)
	slices.Sort(d)
	return d
}

// pct is the nearest-rank percentile (p in 0..100).
func (d dist) pct(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(d))))
	return d[min(max(rank, 1), len(d))-1]
}

func (d dist) mean() time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ptr[T any](v T) *T { return &v }

// floorRow records a floor distribution in milliseconds.
func (r *Results) floorRow(name string, d dist, note string) *Row {
	p50, p99 := ms(d.pct(50)), ms(d.pct(99))
	return r.add(&Row{Name: name, Kind: "floor", Unit: "ms", N: len(d), P50: p50, P99: p99, Mean: ms(d.mean()),
		Floor: p50, FloorP99: p99, FloorOf: "itself", Ratio: ptr(1.0), RatioP99: ptr(1.0), Note: note, floor: true})
}

// latencyRow records a latency distribution in milliseconds against a
// floor given as p50 and p99 in milliseconds.
func (r *Results) latencyRow(name string, d dist, floorP50, floorP99 float64, floorOf string) *Row {
	row := &Row{Name: name, Kind: "latency", Unit: "ms", N: len(d), P50: ms(d.pct(50)), P99: ms(d.pct(99)), Mean: ms(d.mean()),
		Floor: floorP50, FloorP99: floorP99, FloorOf: floorOf}
	if floorP50 > 0 {
		row.Ratio = ptr(row.P50 / floorP50)
	}
	if floorP99 > 0 {
		row.RatioP99 = ptr(row.P99 / floorP99)
	}
	return r.add(row)
}

// valueRow records one measured value against a floor value.
func (r *Results) valueRow(name, unit string, v, floor float64, floorOf string) *Row {
	row := &Row{Name: name, Kind: "value", Unit: unit, N: 1, P50: v, P99: v, Floor: floor, FloorOf: floorOf}
	if floor > 0 {
		row.Ratio = ptr(v / floor)
	}
	return r.add(row)
}

// rateRow records a rate (higher is better): its ratio is floor / rate.
func (r *Results) rateRow(name, unit string, rate, floor float64, floorOf string) *Row {
	row := &Row{Name: name, Kind: "rate", Unit: unit, N: 1, P50: rate, P99: rate, Floor: floor, FloorOf: floorOf, rate: true}
	if rate > 0 && floor > 0 {
		row.Ratio = ptr(floor / rate)
	}
	return r.add(row)
}

// target sets the row's target and whether it held.
func (row *Row) target(what string, holds bool) *Row {
	row.Target, row.Holds = what, ptr(holds)
	return row
}

func (row *Row) note(format string, args ...any) *Row {
	s := fmt.Sprintf(format, args...)
	if row.Note != "" {
		row.Note += "; "
	}
	row.Note += s
	return row
}

func num(v float64) string {
	switch a := math.Abs(v); {
	case v == 0:
		return "0"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func ratioStr(p *float64) string {
	if p == nil {
		return "—"
	}
	return num(*p) + "x"
}

// Markdown renders the table and the notes.
func (r *Results) Markdown() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "### uspace benchmark (%s mode, %s)\n\n", r.Mode, r.Started.Format(time.RFC3339))
	fmt.Fprintf(&b, "Machine: %v CPUs (%v), load average %v at start and %v at end, %v, kernel %v. Took %s.\n\n",
		r.Machine["nproc"], r.Machine["cpu"], r.Machine["loadStart"], r.Machine["loadEnd"], r.Machine["go"], r.Machine["kernel"], r.Took)
	b.WriteString("Ratio = p50 / floor p50 (rates: floor / rate), so above 1 means slower than the floor; ratio p99 likewise with p99s.\n\n")
	b.WriteString("| name | unit | n | p50 | p99 | floor (p50 / p99) | ratio | ratio p99 | target | holds |\n")
	b.WriteString("|---|---|---:|---:|---:|---|---:|---:|---|---|\n")
	for _, row := range r.Rows {
		floor := "—"
		switch {
		case row.floor:
			floor = "(floor)"
		case row.FloorOf != "" && row.FloorP99 > 0:
			floor = fmt.Sprintf("%s = %s / %s", row.FloorOf, num(row.Floor), num(row.FloorP99))
		case row.FloorOf != "":
			floor = fmt.Sprintf("%s = %s", row.FloorOf, num(row.Floor))
		}
		holds := ""
		if row.Holds != nil {
			holds = map[bool]string{true: "yes", false: "**no**"}[*row.Holds]
		}
		ratio, ratio99 := ratioStr(row.Ratio), ratioStr(row.RatioP99)
		if row.floor {
			ratio, ratio99 = "", ""
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			row.Name, row.Unit, row.N, num(row.P50), num(row.P99), floor, ratio, ratio99, row.Target, holds)
	}
	b.WriteString(r.targets())
	var notes []string
	for _, row := range r.Rows {
		if row.Note != "" {
			notes = append(notes, fmt.Sprintf("`%s`: %s", row.Name, row.Note))
		}
	}
	notes = append(notes, r.Notes...)
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// targets is the table of the rows with a target (issue 31's and the
// ones before it), each with its figure, its ratio and whether it held.
func (r *Results) targets() string {
	var b strings.Builder
	held, all := 0, 0
	for _, row := range r.Rows {
		if row.Holds == nil {
			continue
		}
		if all == 0 {
			b.WriteString("| row | p50 | p99 | ratio (p99) | target | holds |\n|---|---:|---:|---:|---|---|\n")
		}
		all++
		holds := "**missed**"
		if *row.Holds {
			held++
			holds = "holds"
		}
		ratio := ratioStr(row.Ratio)
		if row.Kind == "latency" {
			ratio += " (" + ratioStr(row.RatioP99) + ")"
		}
		p99 := ""
		if row.Kind == "latency" {
			p99 = num(row.P99) + " " + row.Unit
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s | %s | %s |\n", row.Name, num(row.P50), row.Unit, p99, ratio, row.Target, holds)
	}
	if all == 0 {
		return ""
	}
	return fmt.Sprintf("\nTargets: %d of %d hold.\n\n%s", held, all, b.String())
}

// write stores the JSON and the markdown next to the binaries.
func (r *Results) write(jsonName string) (string, error) {
	dir := os.Getenv("USPACE_BIN_DIR")
	if dir == "" {
		dir = filepath.Join(moduleRoot(), "bin")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	r.mu.Lock()
	b, err := json.MarshalIndent(r, "", "  ")
	r.mu.Unlock()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, jsonName+".json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, jsonName+".md"), []byte(r.Markdown()), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// sanity reports rows that are missing or carry a ratio that is not a
// finite positive number. It never judges speed.
func (r *Results) sanity(want []string) []string {
	var bad []string
	for _, name := range want {
		if r.row(name) == nil {
			bad = append(bad, "missing row "+name)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, row := range r.Rows {
		for _, p := range []*float64{row.Ratio, row.RatioP99} {
			if p != nil && (math.IsNaN(*p) || math.IsInf(*p, 0) || *p <= 0) {
				bad = append(bad, fmt.Sprintf("row %s has ratio %v", row.Name, *p))
			}
		}
		if row.Ratio == nil && row.Floor > 0 {
			bad = append(bad, fmt.Sprintf("row %s has a floor but no ratio", row.Name))
		}
		if math.IsNaN(row.P50) || math.IsInf(row.P50, 0) || row.P50 < 0 {
			bad = append(bad, fmt.Sprintf("row %s has value %v", row.Name, row.P50))
		}
	}
	return bad
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func machineFacts() map[string]any {
	m := map[string]any{"nproc": runtime.NumCPU(), "go": runtime.Version(), "goarch": runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l, _, ok := strings.Cut(string(b), "\n"); ok {
			m["memTotal"] = strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	m["loadStart"] = loadAvg()
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
