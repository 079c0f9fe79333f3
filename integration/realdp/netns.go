package realdp

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// Netns creates the network namespace name (`ip netns add`), removed at
// the test's cleanup, and returns its path; without the right to make one
// the test is skipped, in one line.
func Netns(t testing.TB, name string) string {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", name).Run() })
	return "/var/run/netns/" + name
}

// Run runs a command and fails the test, with its output, when it fails.
func Run(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// Underlay is the network between hosts: one network namespace per host
// (its VPP runs there) whose only link, Links[i], is a veth end plugged
// into a Linux bridge that lives in a namespace of its own, as hosts on
// one L2 segment.
type Underlay struct {
	Netns []string // path of host i's namespace
	Links []string // host i's end of its veth, in Netns[i]
}

// NewUnderlay builds the underlay of n hosts; the test's cleanup removes
// it (deleting a namespace deletes its veth ends).
func NewUnderlay(t testing.TB, n int) *Underlay {
	t.Helper()
	var b [3]byte
	_, _ = rand.Read(b[:])
	sfx := hex.EncodeToString(b[:])
	brNs := "usl" + sfx + "br"
	Netns(t, brNs)
	Run(t, "ip", "-n", brNs, "link", "add", "br0", "type", "bridge")
	Run(t, "ip", "-n", brNs, "link", "set", "br0", "up")
	u := &Underlay{}
	for i := range n {
		ns := fmt.Sprintf("usl%sh%d", sfx, i)
		u.Netns = append(u.Netns, Netns(t, ns))
		host, port := fmt.Sprintf("ul%d%s", i, sfx), fmt.Sprintf("ub%d%s", i, sfx)
		Run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", port)
		Run(t, "ip", "link", "set", host, "netns", ns)
		Run(t, "ip", "link", "set", port, "netns", brNs)
		Run(t, "ip", "-n", brNs, "link", "set", port, "master", "br0")
		Run(t, "ip", "-n", brNs, "link", "set", port, "up")
		Run(t, "ip", "-n", ns, "link", "set", host, "up")
		u.Links = append(u.Links, host)
	}
	return u
}
