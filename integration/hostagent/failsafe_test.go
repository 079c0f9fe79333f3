package hostagent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// agentArgs are h's agent flags with some replaced (flag -> value).
func agentArgs(h *harness.Host, set map[string]string) []string {
	args := h.AgentArgs()
	for i := 0; i < len(args)-1; i++ {
		if v, ok := set[args[i]]; ok {
			args[i+1] = v
		}
	}
	return args
}

func agentKV(t *testing.T, e *harness.Etcd, host string) *store.KV {
	t.Helper()
	kv, err := e.Store.Get(context.Background(), schema.AgentKey(host))
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// One live host agent per host: a second one on the same machine (same
// --state-dir) is refused at once by the lock; one elsewhere (another
// state dir) exits non-zero naming the first once it has seen the first
// renew its lease. An operator's `etcdctl del` of the registration is
// undone while the agent lives. A stopped or killed agent leaves its lease
// to the next agent with its state dir, which resumes it at once; an agent
// without that record waits the lease out.
func TestOneAgentPerHost(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	first := agentKV(t, e, h.Name)

	sameMachine := harness.StartProc(t, "second host agent, same state dir", binaries.Path(t, "uspace-agent"),
		agentArgs(h, map[string]string{"--metrics-addr": harness.FreeAddr(t)}))
	out := harness.ExitedNonZero(t, sameMachine, 10*time.Second)
	if want := fmt.Sprintf("in use by another host agent for host node1 (pid %d)", h.Agent.Pid()); !strings.Contains(out, want) {
		t.Fatalf("second agent's output does not say %q:\n%s", want, out)
	}
	revBefore := revision(t, e)
	elsewhere := harness.StartProc(t, "second host agent, other state dir", binaries.Path(t, "uspace-agent"),
		agentArgs(h, map[string]string{"--metrics-addr": harness.FreeAddr(t), "--state-dir": harness.ShortTempDir(t)}))
	out = harness.ExitedNonZero(t, elsewhere, harness.LeaseTTL+30*time.Second)
	if !strings.Contains(out, "another host agent is live for host node1") || !strings.Contains(out, fmt.Sprintf("lease %x", first.Lease)) {
		t.Fatalf("second agent's output does not name the first (lease %x):\n%s", first.Lease, out)
	}
	// It read while it waited for the registration, and wrote nothing.
	if rev := revision(t, e); rev != revBefore {
		t.Fatalf("etcd went from revision %d to %d while the refused agent ran", revBefore, rev)
	}
	if kv := agentKV(t, e, h.Name); kv == nil || kv.Lease != first.Lease {
		t.Fatalf("registration after the refused agents: %+v, want the first's lease %x", kv, first.Lease)
	}

	t.Run("etcdctl del is undone", func(t *testing.T) {
		etcdctl := binaries.Path(t, "etcdctl")
		for range 3 {
			start := time.Now()
			out, err := exec.Command(etcdctl, "--endpoints", strings.Join(e.Endpoints, ","), "del", schema.AgentKey(h.Name)).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "1" {
				t.Fatalf("etcdctl del: %v %s", err, out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), harness.WaitTimeout)
			kv, err := e.Store.WaitFor(ctx, schema.AgentKey(h.Name), 0, func(kv *store.KV) (bool, error) { return kv != nil, nil })
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if kv.Lease != first.Lease {
				t.Fatalf("registration put back under lease %x, want the live agent's %x", kv.Lease, first.Lease)
			}
			t.Logf("registration put back %v after etcdctl del", time.Since(start))
		}
	})

	t.Run("gc refuses a live host whose registration was deleted", func(t *testing.T) {
		rev := putMemifs(t, e, h, []string{"keep"}, 0)
		waitIfReady(t, e, h, "keep", "net1", rev)
		if _, err := e.Store.Etcd().Delete(context.Background(), schema.AgentKey(h.Name)); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(binaries.Path(t, "uspacectl"), "--etcd-endpoints", strings.Join(e.Endpoints, ","), "gc", "--host", h.Name).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "agent") {
			t.Fatalf("gc of a live host: %v\n%s", err, out)
		}
		if kv, err := e.Store.Get(context.Background(), ifKey(h, "keep", "net1")); err != nil || kv == nil {
			t.Fatalf("gc removed a live host's intent: %v", err)
		}
		t.Logf("gc refused: %s", out)
	})

	t.Run("stopped: the next agent resumes its lease", func(t *testing.T) {
		before := agentKV(t, e, h.Name)
		if err := h.Agent.Stop(10 * time.Second); err != nil {
			t.Fatalf("first agent's exit: %v", err)
		}
		if kv := agentKV(t, e, h.Name); kv == nil || kv.ModRevision != before.ModRevision {
			t.Fatalf("registration after a clean stop: %+v, want it left as it was (%+v)", kv, before)
		}
		if err := sameMachine.Start(); err != nil {
			t.Fatal(err)
		}
		waitAgent(t, e, h.Name, sameMachine, func(kv *store.KV) bool { return kv.ModRevision > before.ModRevision && kv.Lease == first.Lease })
	})

	t.Run("killed: the next agent resumes its lease at once", func(t *testing.T) {
		before := agentKV(t, e, h.Name)
		sameMachine.Kill()
		start := time.Now()
		if err := h.Agent.Start(); err != nil {
			t.Fatal(err)
		}
		waitAgent(t, e, h.Name, h.Agent, func(kv *store.KV) bool { return kv.ModRevision > before.ModRevision && kv.Lease == first.Lease })
		if took := time.Since(start); took > harness.LeaseTTL {
			t.Errorf("resumed after %v, longer than the lease's TTL %v", took, harness.LeaseTTL)
		}
	})

	t.Run("killed: an agent without its record waits the lease out", func(t *testing.T) {
		h.Agent.Kill()
		if err := elsewhere.Start(); err != nil {
			t.Fatal(err)
		}
		waitAgent(t, e, h.Name, elsewhere, func(kv *store.KV) bool { return kv.Lease != first.Lease })
		if ttl, err := e.Store.Etcd().TimeToLive(context.Background(), clientv3.LeaseID(first.Lease)); err != nil || ttl.TTL != -1 {
			t.Errorf("the killed agent's lease %x while its successor registers: %+v, %v; want it expired", first.Lease, ttl, err)
		}
	})
}

// waitAgent waits for p to hold host's registration as cond says.
func waitAgent(t *testing.T, e *harness.Etcd, host string, p *harness.Proc, cond func(*store.KV) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), harness.WaitTimeout+harness.LeaseTTL)
	defer cancel()
	_, err := e.Store.WaitFor(ctx, schema.AgentKey(host), 0, func(kv *store.KV) (bool, error) {
		select {
		case <-p.Exited():
			return false, fmt.Errorf("%s exited:\n%s", p.Name, p.Output())
		default:
		}
		return kv != nil && cond(kv), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readyz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A host agent started with the wrong --host, or against an empty etcd,
// finds VPP full of uspace interfaces none of its intents or statuses
// account for: it removes none, and says so in /readyz and its metrics.
func TestSweepRefusesWhatNothingProvesOurs(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	rev := putMemifs(t, e, h, names("s", 3), 4)
	for _, c := range names("s", 3) {
		waitIfReady(t, e, h, c, "net1", rev)
	}
	before := swIfIndexes(h)
	if err := h.Agent.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	empty := harness.StartEtcd(t)
	for _, c := range []struct {
		name string
		etcd *harness.Etcd
		host string
	}{
		{"wrong --host", e, "node-1"},
		{"empty etcd", empty, "node1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			metrics := harness.FreeAddr(t)
			p := harness.StartProc(t, "host agent "+c.name, binaries.Path(t, "uspace-agent"), agentArgs(h, map[string]string{
				"--host": c.host, "--metrics-addr": metrics, "--etcd-endpoints": strings.Join(c.etcd.Endpoints, ","),
			}))
			waitAgent(t, c.etcd, c.host, p, func(*store.KV) bool { return true })
			deadline := time.Now().Add(harness.WaitTimeout)
			var code int
			var body string
			for time.Now().Before(deadline) {
				if code, body = readyz(t, metrics); strings.Contains(body, "sweepRefused") {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "3 uspace-tagged interfaces") {
				t.Fatalf("/readyz: %d %s; want 503 naming the 3 refused interfaces", code, body)
			}
			if m := harness.HTTPGet(t, "http://"+metrics+"/metrics"); !strings.Contains(m, "uspace_sweep_refused_interfaces 3") {
				t.Errorf("metrics do not show the refusal")
			}
			if got := swIfIndexes(h); !mapsEqual(got, before) {
				t.Fatalf("VPP's uspace interfaces changed: %v, was %v", got, before)
			}
			if out := p.Output(); !strings.Contains(out, "refusing to remove uspace-tagged interfaces") {
				t.Errorf("no refusal logged:\n%s", out)
			}
			if err := p.Stop(10 * time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}

	// The right agent is back: it adopts them all.
	h.RestartAgent(t)
	for _, c := range names("s", 3) {
		waitIfReady(t, e, h, c, "net1", rev)
	}
	if got := swIfIndexes(h); !mapsEqual(got, before) {
		t.Fatalf("after the right agent's return: %v, was %v", got, before)
	}
}

func mapsEqual(a, b map[string]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// The container side's status stays when the container stops before the
// CNI DEL (Docker's and Kubernetes' order): its agent is gone. The host
// agent removes it once the intent goes, also for a status it finds at
// start without an intent, and then forgets the container (on main it
// kept one entry per container deleted while it was down).
func TestContainerStatusRemovedWithItsIntent(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	ci := &schema.ContainerInterface{Host: h.Name, Container: "gone", Name: "net1", Type: schema.IfTypeMemif,
		Memif: &schema.MemifSpec{Role: schema.MemifSlave, Mode: schema.MemifEthernet, SocketPath: "/run/x/memif.sock"}}
	ciKey := schema.ContainerInterfaceKey(h.Name, "gone", "net1")
	k, err := schema.ParseKey(ciKey)
	if err != nil {
		t.Fatal(err)
	}
	sk := schema.StatusKey(k)
	// What the container agent wrote before its container stopped.
	rev := e.Put(t, map[string]schema.Object{ciKey: ci})
	e.Put(t, map[string]schema.Object{sk: &schema.InterfaceStatus{ObservedRevision: rev, Ready: true, SwIfIndex: 1}})

	e.Delete(t, ciKey)
	e.WaitGone(t, sk)

	// Left while the host agent was down.
	if err := h.Agent.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	other := schema.StatusKey(schema.Key{Kind: schema.KindContainerInterfaceKey, Host: h.Name, Container: "gone2", Interface: "net1"})
	e.Put(t, map[string]schema.Object{other: &schema.InterfaceStatus{ObservedRevision: rev, Ready: true}})
	h.RestartAgent(t)
	e.WaitGone(t, other)
	waitMetric(t, h.MetricsAddr, "uspace_gone_containers_with_statuses 0")

	// A container whose intent is there keeps its status.
	live := schema.ContainerInterfaceKey(h.Name, "live", "net1")
	lci := *ci
	lci.Container = "live"
	rev = e.Put(t, map[string]schema.Object{live: &lci})
	lk, _ := schema.ParseKey(live)
	e.Put(t, map[string]schema.Object{schema.StatusKey(lk): &schema.InterfaceStatus{ObservedRevision: rev, Ready: true}})
	if err := h.Agent.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	h.RestartAgent(t)
	// A round trip through the agent's queues after its start.
	probeRev := putMemifs(t, e, h, []string{"probe"}, 0)
	waitIfReady(t, e, h, "probe", "net1", probeRev)
	if kvs, _, err := e.Store.List(context.Background(), schema.StatusContainerPrefix(h.Name, "live")); err != nil || len(kvs) != 1 {
		t.Fatalf("the live container's status: %v, %v", kvs, err)
	}

	// While its container lives (its meta is there), an interface's status
	// is its container agent's to remove, after the interface leaves the
	// container's VPP; once the meta goes, the host agent removes it.
	mk := schema.ContainerMetaKey(h.Name, "live")
	e.Put(t, map[string]schema.Object{mk: &schema.ContainerMeta{Host: h.Name, Container: "live", Interfaces: []string{"net1"}}})
	e.Delete(t, live)
	probeRev = putMemifs(t, e, h, []string{"probe2"}, 0)
	waitIfReady(t, e, h, "probe2", "net1", probeRev)
	if kvs, _, err := e.Store.List(context.Background(), schema.StatusContainerPrefix(h.Name, "live")); err != nil || len(kvs) != 1 {
		t.Fatalf("the host agent removed a status of a live container (meta present): %v, %v", kvs, err)
	}
	e.Delete(t, mk)
	e.WaitGone(t, schema.StatusKey(lk))
	waitMetric(t, h.MetricsAddr, "uspace_gone_containers_with_statuses 0")
}

// waitMetric waits for the agent's /metrics to hold line.
func waitMetric(t *testing.T, addr, line string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := harness.HTTPGet(t, "http://"+addr+"/metrics")
		if slices.Contains(strings.Split(m, "\n"), line) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no line %q", line)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// An intent cannot make the host agent create directories outside
// --shared-dir: a socket elsewhere needs its directory to exist, and the
// status says so (terminal, not retrying) instead of the agent making it.
func TestSocketDirectoryOnlyUnderSharedDir(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	outside := filepath.Join(harness.ShortTempDir(t), "not", "made")
	hi := memifIntent(h, "out", "net1", 0)
	hi.Memif.SocketPath = filepath.Join(outside, "x.sock")
	rev := e.Put(t, map[string]schema.Object{ifKey(h, "out", "net1"): hi})
	s := harness.WaitStatus[schema.InterfaceStatus](t, e, ifStatusKey(h, "out", "net1"), rev, func(s *schema.InterfaceStatus) bool { return s.Error != "" })
	if !strings.Contains(s.Error, "does not exist") || s.Retrying {
		t.Fatalf("status %+v, want a terminal error saying the directory does not exist", s)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Fatalf("the agent created %s outside --shared-dir", outside)
	}
	// Under --shared-dir the agent makes the directory itself.
	in := memifIntent(h, "in", "net1", 0)
	in.Memif.SocketPath = filepath.Join(h.SharedDir, "sub", "dir", "y.sock")
	rev = e.Put(t, map[string]schema.Object{ifKey(h, "in", "net1"): in})
	waitIfReady(t, e, h, "in", "net1", rev)
}

// revision is etcd's current revision.
func revision(t *testing.T, e *harness.Etcd) int64 {
	t.Helper()
	resp, err := e.Store.Etcd().Get(context.Background(), "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}
