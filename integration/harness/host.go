package harness

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/integration/spdksim"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// LeaseTTL is the host agents' registration lease in tests: short enough
// for lease-expiry scenarios, long enough for a loaded CI machine.
const LeaseTTL = 8 * time.Second

// Host is one host of a test: its VPP and SPDK (simulators in this process
// over real sockets, or real ones) and its host agent (a real process).
type Host struct {
	Name       string
	Dir        string
	VPPSocket  string
	SPDKSocket string
	SharedDir  string
	VolumeRoot string
	// MetricsAddr is where the agent serves /metrics, /healthz, /readyz.
	MetricsAddr string
	// VPP and SPDK are the simulators; nil when the host runs the real
	// dataplane in RealVPP / RealSPDK instead.
	VPP      *vppsim.Sim
	SPDK     *spdksim.Sim
	RealVPP  *realdp.VPP
	RealSPDK *realdp.SPDK
	Agent    *Proc
	etcd     *Etcd
	flags    []string
}

// ShortTempDir makes a temporary directory with a short path: unix socket
// paths must fit in 107 bytes, and t.TempDir() paths can be long.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "us")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// FreeAddr returns a loopback TCP address nobody listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// HostOptions choose a host's dataplanes: the simulators (the default) or
// the real VPP and SPDK of integration/realdp.
type HostOptions struct {
	RealVPP  bool
	RealSPDK bool
	// AgentFlags are added to the host agent's (e.g. --underlay-ip).
	AgentFlags []string
	// VPPNetns and VPPPlugins: with RealVPP, the network namespace the
	// VPP runs in and the plugins it enables besides the usual ones.
	VPPNetns   string
	VPPPlugins []string
	// BeforeAgent, if set, runs once the dataplanes are up and before the
	// host agent starts: where a test makes what an operator made by hand.
	BeforeAgent func(h *Host)
}

// StartHost starts the simulators and the host agent for host name, and
// waits until the agent has registered.
func (e *Etcd) StartHost(t testing.TB, name string) *Host {
	t.Helper()
	return e.StartHostOn(t, name, HostOptions{})
}

// StartHostOn starts the host's dataplanes as opts choose and its host
// agent, and waits until the agent has registered. With a real dataplane
// the matching simulator field (VPP, SPDK) is nil and RealVPP / RealSPDK is
// set.
func (e *Etcd) StartHostOn(t testing.TB, name string, opts HostOptions) *Host {
	t.Helper()
	dir := ShortTempDir(t)
	h := &Host{
		Name:        name,
		Dir:         dir,
		VPPSocket:   filepath.Join(dir, "vpp", "api.sock"),
		SPDKSocket:  filepath.Join(dir, "spdk.sock"),
		SharedDir:   filepath.Join(dir, "shared"),
		VolumeRoot:  filepath.Join(dir, "vhost"),
		MetricsAddr: FreeAddr(t),
		etcd:        e,
		flags:       opts.AgentFlags,
	}
	if opts.RealVPP {
		h.RealVPP = realdp.StartVPP(t, realdp.VPPOptions{Name: name, Netns: opts.VPPNetns, Plugins: opts.VPPPlugins})
		h.VPPSocket = h.RealVPP.APISocket
	} else {
		var err error
		h.VPP, err = vppsim.Start(vppsim.Options{Socket: h.VPPSocket, RuntimeDir: filepath.Join(dir, "vpp")})
		if err != nil {
			t.Fatalf("start vppsim: %v", err)
		}
		t.Cleanup(func() { h.VPP.Close() })
	}
	sockets := filepath.Join(h.VolumeRoot, "block", "sockets")
	if err := os.MkdirAll(sockets, 0o755); err != nil {
		t.Fatal(err)
	}
	if opts.RealSPDK {
		h.RealSPDK = realdp.StartSPDK(t, realdp.SPDKOptions{VhostDir: sockets})
		h.SPDKSocket = h.RealSPDK.RPCSocket
	} else {
		var err error
		h.SPDK, err = spdksim.Start(spdksim.Options{RPCSocket: h.SPDKSocket, VhostDir: sockets})
		if err != nil {
			t.Fatalf("start spdksim: %v", err)
		}
		t.Cleanup(func() { h.SPDK.Close() })
	}
	if opts.BeforeAgent != nil {
		opts.BeforeAgent(h)
	}
	h.Agent = StartProc(t, "host agent "+name, binaries.Path(t, "uspace-agent"), h.AgentArgs())
	h.waitRegistered(t, 0)
	return h
}

// AgentArgs are the flags the host agent runs with.
func (h *Host) AgentArgs() []string {
	return append([]string{"host",
		"--host", h.Name,
		"--etcd-endpoints", strings.Join(h.etcd.Endpoints, ","),
		"--vpp-socket", h.VPPSocket,
		"--spdk-socket", h.SPDKSocket,
		"--shared-dir", h.SharedDir,
		"--volume-root", h.VolumeRoot,
		"--metrics-addr", h.MetricsAddr,
		"--lease-ttl", LeaseTTL.String(),
		"--state-dir", filepath.Join(h.Dir, "state"),
	}, h.flags...)
}

// waitRegistered waits for the agent's lease-bound registration key to be
// written after revision after: by this agent, not a predecessor (whose
// lease it may resume).
func (h *Host) waitRegistered(t testing.TB, after int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := h.etcd.Store.WaitFor(ctx, schema.AgentKey(h.Name), 0, func(kv *store.KV) (bool, error) {
		select {
		case <-h.Agent.Exited():
			return false, fmt.Errorf("host agent exited:\n%s", h.Agent.Output())
		default:
		}
		return kv != nil && kv.Lease != 0 && kv.ModRevision > after, nil
	})
	if err != nil {
		t.Fatalf("host agent %s did not register: %v", h.Name, err)
	}
}

// RestartAgent starts the agent again after Kill or Stop. Within the
// lease's TTL it resumes its predecessor's lease.
func (h *Host) RestartAgent(t testing.TB) {
	t.Helper()
	var after int64
	if kv, err := h.etcd.Store.Get(context.Background(), schema.AgentKey(h.Name)); err == nil && kv != nil {
		after = kv.ModRevision
	}
	if err := h.Agent.Start(); err != nil {
		t.Fatalf("restart host agent: %v", err)
	}
	h.waitRegistered(t, after)
}

// WaitReady waits until the agent's /readyz answers 200: synced, with
// its workers started, registered.
func (h *Host) WaitReady(t testing.TB) {
	t.Helper()
	if err := h.AwaitReady(WaitTimeout); err != nil {
		t.Fatal(err)
	}
}

// AwaitReady is WaitReady for a goroutine other than the test's: it
// returns an error when the agent is not ready within d.
func (h *Host) AwaitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get("http://" + h.MetricsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("host agent %s not ready within %v: %v", h.Name, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RestartAgentWith starts the agent again after Kill or Stop, with flags
// in place of the AgentFlags it ran with.
func (h *Host) RestartAgentWith(t testing.TB, flags ...string) {
	t.Helper()
	h.flags = flags
	h.Agent.Args = append(h.Agent.Args[:1:1], h.AgentArgs()...)
	h.RestartAgent(t)
}

// HTTPGet fetches url and fails the test unless it answers 200.
func HTTPGet(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v %s", url, resp.StatusCode, err, b)
	}
	return string(b)
}
