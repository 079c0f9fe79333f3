package realdp

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/integration/spawn"
)

// startupConf is ../shared/dataplanes/vpp-startup.conf.tmpl: no DPDK, no
// hugepages, an own runtime directory and sockets; plugins memif, vhost and
// ping plus the ones a test asks for.
const startupConf = `unix {
  nodaemon
  nosyslog
  runtime-dir {{dir}}
  cli-listen {{dir}}/cli.sock
  log {{dir}}/vpp.log
  pidfile {{dir}}/vpp.pid
  cli-no-pager
  poll-sleep-usec 100
}
api-segment { prefix {{prefix}} }
socksvr { socket-name {{dir}}/api.sock }
statseg {
  socket-name {{dir}}/stats.sock
  size 32m
  page-size 4k
}
memory {
  main-heap-size 256M
  main-heap-page-size 4k
}
buffers {
  buffers-per-numa 16384
  page-size 4k
}
plugins {
  path {{plugins}}
  plugin default { disable }
{{enable}}}
logging {
  default-log-level info
  default-syslog-log-level disabled
}
`

// VPPOptions shape one VPP instance.
type VPPOptions struct {
	// Name labels the instance in logs; a random suffix keeps the shared
	// memory prefix of parallel runs apart.
	Name string
	// Netns is the path of the network namespace VPP runs in (a
	// container's VPP runs in the container's); "" runs it in the test's.
	Netns string
	// Plugins are enabled besides memif, vhost and ping, by short name:
	// "vxlan" enables vxlan_plugin.so, "af_packet" af_packet_plugin.so
	// (the shared build has both).
	Plugins []string
}

// VPP is one real VPP instance.
type VPP struct {
	Dir       string
	APISocket string
	CLISocket string
	prefix    string
	proc      *spawn.Proc
}

// StartVPP starts a VPP and waits until its API socket and CLI answer.
// The test's cleanup kills it.
func StartVPP(t testing.TB, opts VPPOptions) *VPP {
	t.Helper()
	NeedVPP(t)
	dir, err := os.MkdirTemp("", "uvpp")
	if err != nil {
		t.Fatal(err)
	}
	name := opts.Name
	if name == "" {
		name = "vpp"
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	v := &VPP{
		Dir:       dir,
		APISocket: filepath.Join(dir, "api.sock"),
		CLISocket: filepath.Join(dir, "cli.sock"),
		prefix:    "uspace-" + name + "-" + hex.EncodeToString(suffix[:]),
	}
	var enable strings.Builder
	for _, p := range append([]string{"memif", "vhost", "ping"}, opts.Plugins...) {
		fmt.Fprintf(&enable, "  plugin %s_plugin.so { enable }\n", p)
	}
	conf := strings.NewReplacer(
		"{{dir}}", dir,
		"{{prefix}}", v.prefix,
		"{{plugins}}", filepath.Join(filepath.Dir(vppBin), "..", "lib", "x86_64-linux-gnu", "vpp_plugins"),
		"{{enable}}", enable.String(),
	).Replace(startupConf)
	confPath := filepath.Join(dir, "startup.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := []string{vppBin, "-c", confPath}
	if opts.Netns != "" {
		argv = append([]string{"nsenter", "--net=" + opts.Netns, "--"}, argv...)
	}
	v.proc = &spawn.Proc{Name: "vpp " + name, Args: argv}
	t.Cleanup(func() {
		v.proc.Kill()
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", v.proc.Name, v.proc.Output())
		}
		v.removeShm()
		os.RemoveAll(dir)
	})
	v.Start(t)
	return v
}

// Start starts the instance (again, after Kill): empty, on the same sockets.
func (v *VPP) Start(t testing.TB) {
	t.Helper()
	// A killed VPP leaves its sockets and shared memory behind; a
	// supervisor's restart finds them the same way.
	os.Remove(v.APISocket)
	os.Remove(v.CLISocket)
	v.removeShm()
	if err := v.proc.Start(); err != nil {
		t.Fatalf("start %s: %v", v.proc.Name, err)
	}
	waitFor(t, v.proc, "API socket and CLI", func() error {
		if _, err := os.Stat(v.APISocket); err != nil {
			return err
		}
		_, err := v.cli("show version")
		return err
	})
}

// Kill crashes the instance (SIGKILL) and waits for its end.
func (v *VPP) Kill(t testing.TB) {
	t.Helper()
	v.proc.Kill()
}

// Discard kills the instance for good and removes its directory and shared
// memory now rather than at the test's end: a VPP whose container is gone.
func (v *VPP) Discard(t testing.TB) {
	t.Helper()
	v.proc.Kill()
	v.removeShm()
	os.RemoveAll(v.Dir)
}

// CLI runs one vppctl command and fails the test when vppctl fails.
func (v *VPP) CLI(t testing.TB, cmd string) string {
	t.Helper()
	out, err := v.cli(cmd)
	if err != nil {
		t.Fatalf("vppctl %s: %v", cmd, err)
	}
	return out
}

// Version is `show version`'s first words, e.g. "vpp v25.02-release".
func (v *VPP) Version(t testing.TB) string {
	t.Helper()
	f := strings.Fields(v.CLI(t, "show version"))
	if len(f) < 2 {
		t.Fatalf("show version: %q", f)
	}
	return f[0] + " " + f[1]
}

// Exec runs one vppctl command and returns its output; an error says
// vppctl failed (VPP gone, say), with the output.
func (v *VPP) Exec(cmd string) (string, error) { return v.cli(cmd) }

func (v *VPP) cli(cmd string) (string, error) {
	ctl := filepath.Join(filepath.Dir(vppBin), "vppctl")
	if _, err := os.Stat(ctl); err != nil {
		ctl = "vppctl"
	}
	out, err := exec.Command(ctl, append([]string{"-s", v.CLISocket}, strings.Fields(cmd)...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, out)
	}
	return string(out), nil
}

func (v *VPP) removeShm() {
	m, _ := filepath.Glob("/dev/shm/" + v.prefix + "*")
	for _, f := range m {
		os.Remove(f)
	}
}
