package containeragent_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/schema"
)

const host = "node1"

func meta(container string, ifs ...string) *schema.ContainerMeta {
	return &schema.ContainerMeta{Host: host, Container: container, PodNamespace: "default", PodName: "pod-" + container, Interfaces: ifs}
}

func memif(shared, container, ifname, ip string) *schema.ContainerInterface {
	return &schema.ContainerInterface{Host: host, Container: container, Name: ifname, Type: schema.IfTypeMemif, MTU: 1500,
		Memif:  &schema.MemifSpec{Role: schema.MemifSlave, Mode: schema.MemifEthernet, SocketPath: filepath.Join(shared, "memif-"+container+"-"+ifname+".sock")},
		IPs:    []schema.IPAddress{{Address: ip, Gateway: "10.1.1.1"}},
		Routes: []schema.Route{{Dst: "10.2.0.0/16", GW: "10.1.1.1"}}}
}

func ifKey(container, ifname string) string {
	return schema.ContainerInterfaceKey(host, container, ifname)
}

func statusKey(container, ifname string) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindContainerInterfaceKey, Host: host, Container: container, Interface: ifname})
}

func waitReady(t *testing.T, e *harness.Etcd, container, ifname string, rev int64) *schema.InterfaceStatus {
	t.Helper()
	return harness.WaitStatus[schema.InterfaceStatus](t, e, statusKey(container, ifname), rev, harness.Ready[schema.InterfaceStatus])
}

func iface(st vppsim.State, idx uint32) (vppsim.InterfaceState, bool) {
	for _, i := range st.Interfaces {
		if i.SwIfIndex == idx {
			return i, true
		}
	}
	return vppsim.InterfaceState{}, false
}

func TestConvergesAddSecondInterfaceAndDelete(t *testing.T) {
	e := harness.StartEtcd(t)
	shared := harness.ShortTempDir(t)
	const id = "ctr1"
	// Started before the ADD: it waits for its intents by watch.
	c := e.StartContainer(t, host, shared, []string{"--container-id", id})
	rev := e.Put(t, map[string]schema.Object{
		schema.ContainerMetaKey(host, id): meta(id, "net1"),
		ifKey(id, "net1"):                 memif(shared, id, "net1", "10.1.1.2/24"),
	})
	s := waitReady(t, e, id, "net1", rev)
	st := c.VPP.Snapshot()
	i, ok := iface(st, s.SwIfIndex)
	if !ok || !i.AdminUp || !slices.Contains(i.Addresses, "10.1.1.2/24") || i.MTU[0] != 1500 {
		t.Fatalf("container interface %+v (present %v), want up with 10.1.1.2/24, MTU 1500", i, ok)
	}
	if len(st.Memifs) != 1 || st.Memifs[0].Role != "slave" {
		t.Fatalf("memifs %+v, want one slave", st.Memifs)
	}
	if !hasRoute(st, "10.2.0.0/16", "10.1.1.1") {
		t.Errorf("route 10.2.0.0/16 via 10.1.1.1 missing: %+v", st.Routes)
	}
	// What an operator sees: desired and observed side by side.
	var rows []struct {
		Host, Name, State string
		Agrees            bool
	}
	if err := json.Unmarshal([]byte(uspacectl(t, e, "get", "containers", "--host", host, "-o", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Host != host || rows[0].Name != id+"/net1" || !rows[0].Agrees || rows[0].State != "ready" {
		t.Errorf("uspacectl get containers -o json: %+v", rows)
	}
	// etcdctl's --endpoints spelling works too.
	table, err := exec.Command(binaries.Path(t, "uspacectl"), "get", "containers", "--endpoints", strings.Join(e.Endpoints, ",")).Output()
	if err != nil || !strings.Contains(string(table), id+"/net1") || !strings.Contains(string(table), "ready") {
		t.Errorf("uspacectl get containers --endpoints: %v\n%s", err, table)
	}

	// A second interface while it runs.
	net2 := memif(shared, id, "net2", "10.1.2.2/24")
	net2.Routes = []schema.Route{{Dst: "10.4.0.0/16", GW: "10.1.2.1"}}
	rev = e.Put(t, map[string]schema.Object{
		schema.ContainerMetaKey(host, id): meta(id, "net1", "net2"),
		ifKey(id, "net2"):                 net2,
	})
	waitReady(t, e, id, "net2", rev)
	if n := len(c.VPP.Snapshot().Memifs); n != 2 {
		t.Fatalf("%d memifs, want 2", n)
	}

	// A route dropped from the intent leaves VPP; a new one arrives.
	moved := memif(shared, id, "net2", "10.1.2.2/24")
	moved.Routes = []schema.Route{{Dst: "10.3.0.0/16", GW: "10.1.2.1"}}
	rev = e.Put(t, map[string]schema.Object{ifKey(id, "net2"): moved})
	waitReady(t, e, id, "net2", rev)
	if st := c.VPP.Snapshot(); hasRoute(st, "10.4.0.0/16", "10.1.2.1") || !hasRoute(st, "10.3.0.0/16", "10.1.2.1") || !hasRoute(st, "10.2.0.0/16", "10.1.1.1") {
		t.Fatalf("routes after net2's changed from 10.4.0.0/16 to 10.3.0.0/16: %+v", st.Routes)
	}

	// DEL of the first. The slave's socket file is the host VPP's
	// listening socket: the container agent must leave it alone.
	hostSocket := moved.Memif.SocketPath[:len(moved.Memif.SocketPath)-len("net2.sock")] + "net1.sock"
	if err := os.WriteFile(hostSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.Delete(t, ifKey(id, "net1"))
	e.WaitGone(t, statusKey(id, "net1"))
	st = c.VPP.Snapshot()
	if len(st.Memifs) != 1 {
		t.Fatalf("%d memifs after delete, want 1", len(st.Memifs))
	}
	if _, err := os.Stat(hostSocket); err != nil {
		t.Errorf("the host's socket file went with the container's slave memif: %v", err)
	}

	// A clean stop exits 0.
	if err := c.Agent.Stop(10 * time.Second); err != nil {
		t.Errorf("container agent exit on SIGTERM: %v", err)
	}
}

func hasRoute(st vppsim.State, prefix, gw string) bool {
	for _, r := range st.Routes {
		if r.Prefix == prefix {
			for _, p := range r.Paths {
				if p.NextHop == gw {
					return true
				}
			}
		}
	}
	return false
}

func TestVPPRestartedEmptyIsReapplied(t *testing.T) {
	e := harness.StartEtcd(t)
	shared := harness.ShortTempDir(t)
	const id = "ctr2"
	rev := e.Put(t, map[string]schema.Object{
		schema.ContainerMetaKey(host, id): meta(id, "net1"),
		ifKey(id, "net1"):                 memif(shared, id, "net1", "10.1.1.3/24"),
	})
	// Started after the ADD.
	c := e.StartContainer(t, host, shared, []string{"--container-id", id})
	waitReady(t, e, id, "net1", rev)
	if err := c.VPP.Stop(); err != nil {
		t.Fatal(err)
	}
	harness.WaitStatus[schema.InterfaceStatus](t, e, statusKey(id, "net1"), rev, func(s *schema.InterfaceStatus) bool { return !s.Ready })
	if err := c.VPP.Start(); err != nil {
		t.Fatal(err)
	}
	s := waitReady(t, e, id, "net1", rev)
	if i, ok := iface(c.VPP.Snapshot(), s.SwIfIndex); !ok || !slices.Contains(i.Addresses, "10.1.1.3/24") {
		t.Fatalf("after VPP restart interface %+v (present %v)", i, ok)
	}
}

func TestDiscoveryByPodAndAmbiguity(t *testing.T) {
	e := harness.StartEtcd(t)
	shared := harness.ShortTempDir(t)
	e.Put(t, map[string]schema.Object{
		schema.ContainerMetaKey(host, "abc111"): meta("abc111"),
		schema.ContainerMetaKey(host, "abc222"): meta("abc222"),
	})
	// The hostname "abc" prefixes two containers: an error naming both.
	amb := e.StartContainer(t, host, shared, nil, "POD_NAMESPACE=", "POD_NAME=", "HOSTNAME=abc")
	select {
	case <-amb.Agent.Exited():
	case <-time.After(harness.WaitTimeout):
		t.Fatal("ambiguous identity did not stop the agent")
	}
	if out := amb.Agent.Output(); !strings.Contains(out, "abc111") || !strings.Contains(out, "abc222") {
		t.Errorf("ambiguity error does not list the candidates:\n%s", out)
	}

	// The pod identity picks exactly one; its interface converges.
	c := e.StartContainer(t, host, shared, nil, "POD_NAMESPACE=default", "POD_NAME=pod-abc222")
	rev := e.Put(t, map[string]schema.Object{ifKey("abc222", "net1"): memif(shared, "abc222", "net1", "10.1.1.4/24")})
	waitReady(t, e, "abc222", "net1", rev)
	if n := len(c.VPP.Snapshot().Memifs); n != 1 {
		t.Fatalf("%d memifs, want 1", n)
	}
}

func TestOnceAppliesAndExits(t *testing.T) {
	e := harness.StartEtcd(t)
	shared := harness.ShortTempDir(t)
	const id = "ctr3"
	rev := e.Put(t, map[string]schema.Object{
		schema.ContainerMetaKey(host, id): meta(id, "net1"),
		ifKey(id, "net1"):                 memif(shared, id, "net1", "10.1.1.5/24"),
	})
	c := e.StartContainer(t, host, shared, []string{"--container-id", id, "--once"})
	select {
	case <-c.Agent.Exited():
	case <-time.After(harness.WaitTimeout):
		t.Fatal("--once did not exit")
	}
	if err := c.Agent.Stop(time.Second); err != nil {
		t.Fatalf("--once exit: %v\n%s", err, c.Agent.Output())
	}
	waitReady(t, e, id, "net1", rev)
	if n := len(c.VPP.Snapshot().Memifs); n != 1 {
		t.Fatalf("%d memifs, want 1", n)
	}
}

func TestEtcdRestartsAndOutageWhileRunning(t *testing.T) {
	e := harness.StartCluster(t, 3)
	shared := harness.ShortTempDir(t)
	const id = "ctr4"
	c := e.StartContainer(t, host, shared, []string{"--container-id", id})
	rev := e.Put(t, map[string]schema.Object{ifKey(id, "net1"): memif(shared, id, "net1", "10.1.1.6/24")})
	waitReady(t, e, id, "net1", rev)
	// Restart every member in turn, the one the agent may be on included.
	for i := range e.Cluster.Members {
		m := e.Cluster.Members[i]
		m.Stop(t)
		if err := m.Restart(t); err != nil {
			t.Fatal(err)
		}
		e.Cluster.WaitLeader(t)
	}
	addAndCount := func(ifname, ip string, want int) {
		t.Helper()
		rev := e.Put(t, map[string]schema.Object{ifKey(id, ifname): memif(shared, id, ifname, ip)})
		waitReady(t, e, id, ifname, rev)
		if n := len(c.VPP.Snapshot().Memifs); n != want {
			t.Fatalf("%d memifs after adding %s, want %d", n, ifname, want)
		}
	}
	addAndCount("net2", "10.1.2.6/24", 2)

	// A total outage: every member down. The agent keeps the dataplane as
	// it is and waits; once etcd is back it carries on from its revision.
	before, err := json.Marshal(c.VPP.Snapshot().Interfaces)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range e.Cluster.Members {
		m.Stop(t)
	}
	time.Sleep(3 * time.Second) // an outage, not a test of speed: long enough for the watch to break and retry
	select {
	case <-c.Agent.Exited():
		t.Fatalf("the container agent exited during the outage:\n%s", c.Agent.Output())
	default:
	}
	during, _ := json.Marshal(c.VPP.Snapshot().Interfaces)
	if string(during) != string(before) {
		t.Errorf("the dataplane changed while etcd was down:\nbefore %s\nduring %s", before, during)
	}
	for _, m := range e.Cluster.Members {
		if err := m.Restart(t); err != nil {
			t.Fatal(err)
		}
	}
	e.Cluster.WaitLeader(t)
	addAndCount("net3", "10.1.3.6/24", 3)
}

func uspacectl(t *testing.T, e *harness.Etcd, args ...string) string {
	t.Helper()
	args = append([]string{"--etcd-endpoints", strings.Join(e.Endpoints, ",")}, args...)
	out, err := exec.Command(binaries.Path(t, "uspacectl"), args...).Output()
	if err != nil {
		t.Fatalf("uspacectl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// An agent that starts before its VPP (a pod's containers start
// together) waits a short grace for the first connection instead of
// reporting "VPP not connected" for each interface and then ready: its
// first status is the ready one.
func TestStartsBeforeItsVPP(t *testing.T) {
	e := harness.StartEtcd(t)
	shared := harness.ShortTempDir(t)
	const id = "ctr1"
	c := e.StartContainer(t, host, shared, []string{"--container-id", id})
	// Stopped at once, perhaps before it handles SIGTERM: no matter.
	_ = c.Agent.Stop(10 * time.Second)
	if err := c.VPP.Stop(); err != nil {
		t.Fatal(err)
	}
	rev := e.Put(t, map[string]schema.Object{
		schema.ContainerMetaKey(host, id): meta(id, "net1"),
		ifKey(id, "net1"):                 memif(shared, id, "net1", "10.1.1.2/24"),
	})
	if err := c.Agent.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := c.VPP.Start(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, e, id, "net1", rev)
	kv, err := e.Store.Get(context.Background(), statusKey(id, "net1"))
	if err != nil || kv == nil {
		t.Fatalf("status: %v %v", kv, err)
	}
	if kv.Version != 1 {
		t.Errorf("status written %d times before it was ready, want once: the agent reported its VPP missing during its start", kv.Version)
	}
}
