package bench

import (
	"context"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/container"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/schema"
)

// identityPhase: how long an idle container agent in direct mode takes to
// notice that etcd no longer accepts its credential. Its open watch goes on
// delivering after its user is deleted; its identity check (one read every
// container.DefaultProbeInterval) is what notices. The agent runs with
// container credentials on an etcd of its own with auth on; the user is
// deleted once the agent is idle, right after it converged, so the figure
// is the bound: the check's interval and one request.
func (b *bench) identityPhase(t *testing.T) {
	e := startEtcd(t, 1)
	shared := harness.ShortTempDir(t)
	const id = "ctr-identity"
	rev := e.Put(t, map[string]schema.Object{
		schema.ContainerMetaKey(benchHost, id):              &schema.ContainerMeta{Host: benchHost, Container: id, Interfaces: []string{"net1"}},
		schema.ContainerInterfaceKey(benchHost, id, "net1"): containerIntent(benchHost, id, shared, 1),
	})
	role := rbac.ContainersRole(benchHost)
	as, pwFile := e.EnableAuth(t, role)
	c := e.StartContainer(t, benchHost, shared, []string{"--container-id", id, "--etcd-user", role.Name, "--etcd-password-file", pwFile})
	harness.WaitStatus[schema.InterfaceStatus](t, as, ctrStatusKey(benchHost, id, "net1"), rev, harness.Ready[schema.InterfaceStatus])
	time.Sleep(time.Second)

	start := time.Now()
	if _, err := rbac.RemoveIdentity(context.Background(), as.Store, role.Name); err != nil {
		t.Fatal(err)
	}
	limit := container.DefaultProbeInterval + 30*time.Second
	select {
	case <-c.Agent.Exited():
	case <-time.After(limit):
		t.Fatalf("container agent still running %v after its user was deleted:\n%s", limit, c.Agent.Output())
	}
	took := time.Since(start)
	bound := container.DefaultProbeInterval + time.Second
	b.res.valueRow("container_agent_revoked_noticed", "s", took.Seconds(), bound.Seconds(), "identity check interval + 1 s").
		target("<= the interval + a request", took <= bound).
		note("an idle container agent with container credentials (uspace-containers-<host>, password) on an etcd of its own with auth on, "+
			"its user deleted (rbac.RemoveIdentity) 1 s after it converged, until it exits non-zero; it checks its identity with one "+
			"count-only read every %v (--identity-check-interval), the one read a minute of idle_etcd_reads_agents; its open watch "+
			"would go on delivering", container.DefaultProbeInterval)
}
