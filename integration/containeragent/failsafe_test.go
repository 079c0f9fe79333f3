package containeragent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/schema"
)

// waitExit waits for the agent to end and returns its output; it fails
// the test when the agent keeps running or exits with status 0.
func waitExit(t *testing.T, c *harness.Container, within time.Duration) string {
	t.Helper()
	select {
	case <-c.Agent.Exited():
	case <-time.After(within):
		t.Fatalf("container agent still running after %v:\n%s", within, c.Agent.Output())
	}
	if err := c.Agent.Stop(time.Second); err == nil {
		t.Fatalf("container agent exited with status 0:\n%s", c.Agent.Output())
	}
	return c.Agent.Output()
}

// An idle agent whose etcd user is deleted while it runs exits non-zero,
// naming the cause, within its identity check interval plus a request,
// instead of running on without converging anything: its open watch goes
// on delivering, so the check's read is what notices.
func TestExitsWhenItsEtcdUserIsDeleted(t *testing.T) {
	e := harness.StartEtcd(t)
	shared := harness.ShortTempDir(t)
	const id = "ctr-auth"
	rev := e.Put(t, map[string]schema.Object{
		schema.ContainerMetaKey(host, id): meta(id, "net1"),
		ifKey(id, "net1"):                 memif(shared, id, "net1", "10.1.1.9/24"),
	})

	role := rbac.ContainersRole(host)
	as, pwFile := e.EnableAuth(t, role)

	const interval = 3 * time.Second
	c := e.StartContainer(t, host, shared, []string{"--container-id", id,
		"--etcd-user", role.Name, "--etcd-password-file", pwFile, "--identity-check-interval", interval.String()})
	harness.WaitStatus[schema.InterfaceStatus](t, as, statusKey(id, "net1"), rev, harness.Ready[schema.InterfaceStatus])
	// Idle, its watch long open: nothing but the identity check would
	// meet the refusal.
	time.Sleep(time.Second)

	start := time.Now()
	if _, err := rbac.RemoveIdentity(context.Background(), as.Store, role.Name); err != nil {
		t.Fatal(err)
	}
	out := waitExit(t, c, interval+10*time.Second)
	took := time.Since(start)
	t.Logf("agent exited %v after its user was deleted (identity checked every %v)", took, interval)
	last := out[max(strings.LastIndex(out, "uspace-agent: "), 0):]
	if !strings.HasPrefix(last, "uspace-agent: etcd no longer accepts this container agent's identity") || !strings.Contains(last, "authentication failed") {
		t.Fatalf("exit does not name the identity check and etcd's reason:\n%s", out)
	}
	if took > interval+5*time.Second {
		t.Errorf("noticed %v after the deletion, with a check every %v", took, interval)
	}
}

// --once with nothing to go by but identities that match no container
// fails at once, naming every identity it tried, instead of hanging.
func TestOnceWithoutMatchSaysWhatItTried(t *testing.T) {
	e := harness.StartEtcd(t)
	shared := harness.ShortTempDir(t)
	e.Put(t, map[string]schema.Object{schema.ContainerMetaKey(host, "someone-else"): meta("someone-else", "net1")})
	c := e.StartContainer(t, host, shared, []string{"--once"}, "HOSTNAME=nomatch12", "POD_NAMESPACE=", "POD_NAME=",
		"CNI_CONTAINERID=not-here", "USPACE_CONTAINER_ID=")
	out := waitExit(t, c, harness.WaitTimeout)
	for _, want := range []string{"no container with intents on this host matches", "CNI_CONTAINERID not-here", "hostname nomatch12"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}
