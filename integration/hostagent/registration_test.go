package hostagent_test

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/schema"
)

// vppWrites counts the requests sim has handled that may change VPP's
// state, by message name.
func vppWrites(sim *vppsim.Sim) map[string]uint64 {
	out := map[string]uint64{}
	for _, m := range sim.Messages() {
		name := m[:max(0, strings.LastIndexByte(m, '_'))]
		if n := sim.MessageCount(name); n > 0 && !realdp.ReadOnly(name) {
			out[name] = n
		}
	}
	return out
}

// etcd is down for longer than the agent's lease TTL, then back. The agent
// keeps running (it does not take its own lease for another agent's) and
// is registered again. While its registration is lost it writes nothing
// to VPP: a VPP restarted meanwhile stays empty until the registration is
// back, then everything is re-applied.
func TestEtcdOutageLongerThanTheLease(t *testing.T) {
	e := harness.StartCluster(t, 1)
	h := e.StartHost(t, "node1")
	all := names("o", 3)
	rev := putMemifs(t, e, h, all, 5)
	for _, c := range all {
		waitIfReady(t, e, h, c, "net1", rev)
	}
	lease := agentKV(t, e, h.Name).Lease

	m := e.Cluster.Members[0]
	m.Stop(t)
	down := time.Now()
	deadline := down.Add(harness.LeaseTTL + harness.WaitTimeout)
	for {
		code, body := readyz(t, h.MetricsAddr)
		if code == http.StatusServiceUnavailable && strings.Contains(body, "registration") {
			t.Logf("registration lost %v after etcd stopped: %s", time.Since(down).Round(time.Millisecond), strings.TrimSpace(body))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not report its registration lost: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := vppWrites(h.VPP)
	if err := h.VPP.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if got := vppWrites(h.VPP); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("VPP writes while the registration was lost:\nbefore %v\nafter  %v", before, got)
	}
	if n := len(uspaceIfs(h.VPP.Snapshot())); n != 0 {
		t.Errorf("%d uspace interfaces made in the restarted VPP while the registration was lost", n)
	}
	if !h.Agent.Running() {
		t.Fatalf("agent exited during the outage:\n%s", h.Agent.Output())
	}
	t.Logf("etcd down for %v", time.Since(down).Round(time.Millisecond))
	if err := m.Restart(t); err != nil {
		t.Fatal(err)
	}
	e.Cluster.WaitLeader(t)

	ctx, cancel := context.WithTimeout(context.Background(), harness.WaitTimeout)
	defer cancel()
	for {
		code, body := readyz(t, h.MetricsAddr)
		if code == http.StatusOK && len(uspaceIfs(h.VPP.Snapshot())) == len(all) {
			break
		}
		if !h.Agent.Running() {
			t.Fatalf("agent exited after etcd came back:\n%s", h.Agent.Output())
		}
		if ctx.Err() != nil {
			t.Fatalf("not ready again with every interface re-made: %d %s, %d interfaces", code, body, len(uspaceIfs(h.VPP.Snapshot())))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if kv := agentKV(t, e, h.Name); kv == nil {
		t.Fatal("ready, yet not registered")
	} else {
		t.Logf("registered again under lease %x (before the outage: %x)", kv.Lease, lease)
	}
	if out := h.Agent.Output(); strings.Contains(out, "another host agent") {
		t.Errorf("the agent took itself for another agent:\n%s", out)
	}
}

// `uspace-agent host --decommission` takes a stopped host out for good:
// its lease, and so its registration and memberships, go at once instead
// of after the TTL. It refuses while the agent runs.
func TestDecommission(t *testing.T) {
	e := harness.StartEtcd(t)
	h := e.StartHost(t, "node1")
	lease := agentKV(t, e, h.Name).Lease
	member := schema.MemberKey(h.Name, "net")
	// What a host agent joined to networks that span hosts binds to its
	// lease.
	if _, err := e.Store.Etcd().Put(context.Background(), member, "{}", clientv3.WithLease(clientv3.LeaseID(lease))); err != nil {
		t.Fatal(err)
	}
	decommission := func() (string, error) {
		out, err := exec.Command(binaries.Path(t, "uspace-agent"), append(h.AgentArgs(), "--decommission")...).CombinedOutput()
		return string(out), err
	}

	out, err := decommission()
	if err == nil || !strings.Contains(out, "in use by another host agent for host node1") {
		t.Fatalf("decommission of a running agent: %v\n%s", err, out)
	}
	if kv := agentKV(t, e, h.Name); kv == nil || kv.Lease != lease {
		t.Fatalf("registration after a refused decommission: %+v", kv)
	}

	if err := h.Agent.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	out, err = decommission()
	if err != nil || !strings.Contains(out, fmt.Sprintf("host node1 decommissioned: lease %x revoked", lease)) {
		t.Fatalf("decommission: %v\n%s", err, out)
	}
	for _, k := range []string{schema.AgentKey(h.Name), member} {
		if kv, err := e.Store.Get(context.Background(), k); kv != nil || err != nil {
			t.Errorf("%s after decommission: %+v, %v", k, kv, err)
		}
	}
	// The record is gone: the next agent registers afresh.
	h.RestartAgent(t)
	if kv := agentKV(t, e, h.Name); kv == nil || kv.Lease == lease {
		t.Errorf("registration after decommission and a new start: %+v", kv)
	}
}
