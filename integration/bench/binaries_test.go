package bench

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/binaries"
)

// leanTarget is the bound on the CNI plugin's package
// initialisation per exec, as a multiple of host-local's.
const leanTarget = 3

// binaries prints, for host-local and every binary of cmd/, its size, the
// packages it links, the package initialisation it runs on every exec
// (GODEBUG=inittrace=1: the sum of the clock time of every package's init)
// and one exec of its cheapest invocation, against host-local's.
func (b *bench) binaries(t *testing.T) {
	n := b.cfg.binSamples
	hlInit := initDist(t, b.hostLocal, nil, n)
	hlSize := fileMB(t, b.hostLocal)
	b.res.floorRow("init_host_local", hlInit,
		"package initialisation per exec of host-local (GODEBUG=inittrace=1, the clock time of every package's init summed)")
	ents, err := os.ReadDir(filepath.Join(moduleRoot(), "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		name := e.Name()
		bin := binaries.Path(t, name)
		args := cheapArgs(name)
		row := b.res.latencyRow("init_"+name, initDist(t, bin, args, n), ms(hlInit.pct(50)), ms(hlInit.pct(99)), "host-local's init")
		ex := samples(n, func() time.Duration { return execCheap(t, bin, args) })
		row.note("%s %s MB (host-local %s MB), %d packages linked; exec of `%s` p50 %s ms, p99 %s ms",
			name, num(fileMB(t, bin)), num(hlSize), packagesLinked(t, name), strings.Join(append([]string{name}, args...), " "),
			num(ms(ex.pct(50))), num(ms(ex.pct(99))))
		if name == "userspace" {
			row.target("p50 <= 3x host-local's", row.Ratio != nil && *row.Ratio <= leanTarget)
			f50, f99 := b.floor("exec_floor")
			b.res.latencyRow("exec_userspace", ex, f50, f99, "exec floor c").
				note("fork+exec of the built `userspace` plugin answering CNI VERSION: its start-up alone, no etcd; " +
					"host-local's own exec is the row exec_host_local")
		}
	}
}

// cheapArgs is the invocation of a binary that does the least: CNI
// VERSION for the plugin (through its environment), version or help for
// the others.
func cheapArgs(name string) []string {
	switch name {
	case "userspace":
		return nil
	case "uspace-volume":
		return []string{"--version"}
	}
	return []string{"--help"}
}

func cheapCmd(bin string, args []string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "CNI_COMMAND=VERSION")
	cmd.Stdin = strings.NewReader(`{"cniVersion":"1.0.0"}`)
	return cmd
}

// execCheap times one exec; a usage exit status is fine, the exec is what
// is timed.
func execCheap(t testing.TB, bin string, args []string) time.Duration {
	cmd := cheapCmd(bin, args)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("%s: %v", bin, err)
		}
	}
	return time.Since(start)
}

// initDist runs bin n times (after warm-up) with GODEBUG=inittrace=1 and
// returns the summed init clock time of each run.
func initDist(t testing.TB, bin string, args []string, n int) dist {
	t.Helper()
	var out []time.Duration
	for i := range n + warmup {
		cmd := cheapCmd(bin, args)
		cmd.Env = append(cmd.Env, "GODEBUG=inittrace=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("%s: %v", bin, err)
			}
		}
		d, inits := sumInit(stderr.Bytes())
		if inits == 0 {
			t.Fatalf("%s printed no init trace: %s", bin, stderr.String())
		}
		if i >= warmup {
			out = append(out, d)
		}
	}
	return newDist(out)
}

// sumInit adds the clock times of inittrace lines
// ("init runtime @2.2 ms, 0.48 ms clock, 0 bytes, 0 allocs").
func sumInit(trace []byte) (time.Duration, int) {
	var total float64
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(trace))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 7 || f[0] != "init" || f[6] != "clock," {
			continue
		}
		if v, err := strconv.ParseFloat(f[4], 64); err == nil {
			total += v
			n++
		}
	}
	return time.Duration(total * float64(time.Millisecond)), n
}

func fileMB(t testing.TB, path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return float64(fi.Size()) / 1e6
}

// packagesLinked counts the packages `go list -deps` gives for a command.
func packagesLinked(t testing.TB, name string) int {
	cmd := exec.Command("go", "list", "-deps", "./cmd/"+name)
	cmd.Dir = moduleRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/%s: %v", name, err)
	}
	return bytes.Count(out, []byte("\n"))
}
