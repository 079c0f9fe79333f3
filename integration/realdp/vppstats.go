package realdp

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// What a VPP's CLI says about the resources it holds, for leak checks.

var pingStats = regexp.MustCompile(`(\d+) sent, (\d+) received`)

// PingCounts reads how many packets a VPP `ping` sent and how many
// replies it received from its output; ok is false when the output has
// no statistics line.
func PingCounts(out string) (sent, received int, ok bool) {
	m := pingStats.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, false
	}
	sent, _ = strconv.Atoi(m[1])
	received, _ = strconv.Atoi(m[2])
	return sent, received, true
}

// Ping pings dst from this VPP until replies come back (memifs take a
// moment to connect and ARP to resolve) or within passes; it returns the
// last statistics line, and an error with the last output when no reply
// came.
func (v *VPP) Ping(dst string, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for {
		out, err := v.cli("ping " + dst + " repeat 2 interval 0.1")
		if m := pingStats.FindStringSubmatch(out); err == nil && m != nil {
			if n, _ := strconv.Atoi(m[2]); n > 0 {
				return m[0], nil
			}
		}
		if time.Now().After(deadline) {
			last := strings.TrimSpace(out)
			if m := pingStats.FindString(out); m != "" {
				last = m
			}
			return "", fmt.Errorf("ping %s from %s: no reply within %v (last: %s, %v)", dst, v.proc.Name, within, last, err)
		}
	}
}

// APIClients are the names of the binary-API clients connected
// (`show api clients`: shared-memory and socket clients alike).
func (v *VPP) APIClients() ([]string, error) {
	out, err := v.cli("show api clients")
	if err != nil {
		return nil, err
	}
	var names []string
	in := false
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
		case strings.HasSuffix(l, "clients"): // a section's title
			in = false
		case f[0] == "Name":
			in = true
		case in && len(f) >= 2:
			names = append(names, f[0])
		}
	}
	return names, nil
}

// Buffers are the buffers of every pool (`show buffers`): Free counts
// the available and the per-thread cached ones.
type Buffers struct{ Total, Free int }

// Used is what is neither available nor cached: in rings, in flight, or
// lost.
func (b Buffers) Used() int { return b.Total - b.Free }

// Buffers sums `show buffers` over its pools.
func (v *VPP) Buffers() (Buffers, error) {
	var b Buffers
	out, err := v.cli("show buffers")
	if err != nil {
		return b, err
	}
	for _, l := range strings.Split(out, "\n") {
		// Pool Name, Index, NUMA, Size, Data Size, Total, Avail, Cached, Used
		f := strings.Fields(l)
		if len(f) != 9 {
			continue
		}
		var n [3]int
		ok := true
		for i := range n {
			var err error
			if n[i], err = strconv.Atoi(f[5+i]); err != nil {
				ok = false
			}
		}
		if ok {
			b.Total += n[0]
			b.Free += n[1] + n[2]
		}
	}
	if b.Total == 0 {
		return b, fmt.Errorf("show buffers: no pool in:\n%s", out)
	}
	return b, nil
}

var heapUsed = regexp.MustCompile(`used: ([0-9.]+)([KMG]?)`)

// HeapUsed is the main heap's use in bytes (`show memory main-heap`,
// which prints it to 3 significant digits: 35.7M).
func (v *VPP) HeapUsed() (int64, error) {
	out, err := v.cli("show memory main-heap")
	if err != nil {
		return 0, err
	}
	m := heapUsed.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("show memory main-heap: no use in:\n%s", out)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("show memory main-heap: %q: %w", m[0], err)
	}
	return int64(n * float64(map[string]int64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m[2]])), nil
}
