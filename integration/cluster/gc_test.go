package cluster_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
)

// uspacectl runs the built uspacectl against the cluster.
func uspacectl(t *testing.T, e *harness.Etcd, args ...string) (string, error) {
	t.Helper()
	args = append([]string{"--etcd-endpoints", strings.Join(e.Endpoints, ",")}, args...)
	out, err := exec.Command(binaries.Path(t, "uspacectl"), args...).CombinedOutput()
	return string(out), err
}

// registeredHosts is `uspacectl get hosts -o json`, as host names.
func registeredHosts(t *testing.T, e *harness.Etcd) []string {
	t.Helper()
	out, err := uspacectl(t, e, "get", "hosts", "-o", "json")
	if err != nil {
		t.Fatalf("uspacectl get hosts: %v\n%s", err, out)
	}
	var rows []struct {
		Host  string `json:"host"`
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("uspacectl get hosts -o json: %v\n%s", err, out)
	}
	var hosts []string
	for _, r := range rows {
		if r.State != "registered" {
			t.Errorf("host row %+v", r)
		}
		hosts = append(hosts, r.Host)
	}
	slices.Sort(hosts)
	return hosts
}

// snapshotKV maps every key under prefix to its mod revision.
func snapshotKV(t *testing.T, e *harness.Etcd, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, kv := range list(t, e, prefix) {
		out[kv.Key] = kv.ModRevision
	}
	return out
}

// Scenario 6: a host is removed. Its agent dies (SIGKILL: no goodbye, the
// registration stays until its 5s lease expires). While it is still
// registered, `uspacectl gc --host` refuses and deletes nothing. Once the
// lease has expired `uspacectl get hosts` no longer lists it, and
// `uspacectl gc --host node1` removes every intent and status of node1 —
// and not one key of node10 (whose name node1 prefixes) or node2.
func TestHostRemovedAndGC(t *testing.T) {
	e := startCluster(t)
	hs := startHosts(t, e, "node1", "node10", "node2")
	gone := hs[0]
	const id = "ctr-gc"
	shared := harness.ShortTempDir(t)
	objs := map[string]schema.Object{}
	for _, h := range hs {
		objs = merge(objs, memifs(h, names("g", 3), 4), map[string]schema.Object{
			volKey(h, "vol0"):                                volumeIntent(h, "vol0", schema.VolumeBlk, 0),
			schema.ContainerMetaKey(h.Name, id):              &schema.ContainerMeta{Host: h.Name, Container: id, Interfaces: []string{"net0"}},
			schema.ContainerInterfaceKey(h.Name, id, "net0"): containerMemif(h.Name, id, shared, "net0", 0),
		})
	}
	e.Put(t, objs)
	c := e.StartContainer(t, gone.Name, shared, []string{"--container-id", id})
	for _, h := range hs {
		converged(t, e, h)
	}
	convergedContainer(t, e, c, id)
	if got := registeredHosts(t, e); !slices.Equal(got, []string{"node1", "node10", "node2"}) {
		t.Fatalf("uspacectl get hosts: %v", got)
	}

	gone.Agent.Kill()
	if err := c.Agent.Stop(5 * time.Second); err != nil {
		t.Logf("container agent: %v", err)
	}
	before := snapshotKV(t, e, schema.Root)
	// Still registered: gc refuses.
	if out, err := uspacectl(t, e, "gc", "--host", gone.Name); err == nil || !strings.Contains(out, "registered agent") {
		t.Errorf("gc of a registered host: %v\n%s", err, out)
	}
	if after := snapshotKV(t, e, schema.Root); len(after) != len(before) {
		t.Errorf("refused gc changed etcd: %d keys -> %d", len(before), len(after))
	}

	e.WaitGone(t, schema.AgentKey(gone.Name))
	if got := registeredHosts(t, e); !slices.Equal(got, []string{"node10", "node2"}) {
		t.Errorf("uspacectl get hosts after node1's lease expired: %v", got)
	}
	others := map[string]map[string]int64{}
	for _, h := range hs[1:] {
		others[h.Name] = snapshotKV(t, e, schema.HostPrefix(h.Name))
		for k, v := range snapshotKV(t, e, schema.StatusHostPrefix(h.Name)) {
			others[h.Name][k] = v
		}
	}
	n := len(hostKeys(t, e, gone.Name))
	if n == 0 {
		t.Fatal("node1 has nothing to collect")
	}

	out, err := uspacectl(t, e, "gc", "--host", gone.Name)
	if err != nil {
		t.Fatalf("uspacectl gc --host %s: %v\n%s", gone.Name, err, out)
	}
	if want := fmt.Sprintf("host %s: removed %d keys", gone.Name, n); !strings.Contains(out, want) {
		t.Errorf("gc output %q, want %q", out, want)
	}
	if left := list(t, e, schema.HostPrefix(gone.Name)); len(left) != 0 {
		t.Errorf("intents of node1 left after gc: %v", keysOf(left))
	}
	if left := list(t, e, schema.StatusHostPrefix(gone.Name)); len(left) != 0 {
		t.Errorf("statuses of node1 left after gc: %v", keysOf(left))
	}
	for _, h := range hs[1:] {
		now := snapshotKV(t, e, schema.HostPrefix(h.Name))
		for k, v := range snapshotKV(t, e, schema.StatusHostPrefix(h.Name)) {
			now[k] = v
		}
		if len(now) != len(others[h.Name]) {
			t.Errorf("gc of node1 changed %s: %d keys -> %d", h.Name, len(others[h.Name]), len(now))
		}
		for k, rev := range others[h.Name] {
			if now[k] != rev {
				t.Errorf("gc of node1 touched %s (mod revision %d -> %d)", k, rev, now[k])
			}
		}
		converged(t, e, h)
	}
	t.Logf("%s", strings.TrimSpace(out))
	out, err = uspacectl(t, e, "get", "interfaces", "--host", gone.Name)
	if err != nil || !strings.Contains(out, "(no interface)") {
		t.Errorf("uspacectl get interfaces --host node1 after gc: %v\n%s", err, out)
	}
}
