package kube_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/kube"
	"github.com/uspace-io/uspace/schema"
)

// restartKeepsPods: while vpp-a and vpp-b run, restart does what its name
// says; afterwards their interfaces are the ones they had (the host
// agent, if it restarted, adopted them: not one binary-API message that
// changes the host VPP, and no intent or status rewritten), they still
// ping each other, and a new pod works.
func (e *env) restartKeepsPods(restart func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) {
		a, b := e.pod(t, "vpp-a"), e.pod(t, "vpp-b")
		keys := e.revisions(t, a, b)
		writes := e.Proxy.Writes()
		restart(t)
		e.waitReady(t, "vpp-a", "vpp-b")
		e.ping(t, "vpp-a", b.IP)
		if now := e.Proxy.Writes(); !maps.Equal(now, writes) {
			t.Errorf("host VPP write messages during the restart: before %v, after %v", writes, now)
		}
		if now := e.revisions(t, a, b); !maps.Equal(now, keys) {
			t.Errorf("the pods' keys in etcd changed during the restart:\nbefore %v\nafter  %v", keys, now)
		}
		for _, p := range []pod{a, b} {
			if q := e.pod(t, p.Name); q.Container != p.Container || q.HostStatus.SwIfIndex != p.HostStatus.SwIfIndex {
				t.Errorf("pod %s: container %s, sw_if_index %d after the restart; %s, %d before",
					p.Name, q.Container, q.HostStatus.SwIfIndex, p.Container, p.HostStatus.SwIfIndex)
			}
		}
		e.startVPPPods(t, "memif-network", "vpp-new")
		n := e.pod(t, "vpp-new")
		e.waitContainerReady(t, n)
		e.ping(t, "vpp-new", a.IP)
		e.deletePod(t, "vpp-new")
		e.gone(t, n, time.Minute)
	}
}

// revisions are every key of the pods' containers in etcd (intents and
// statuses) with its mod revision.
func (e *env) revisions(t *testing.T, pods ...pod) map[string]int64 {
	t.Helper()
	revs := map[string]int64{}
	for _, p := range pods {
		for _, k := range e.containerKeys(t, p.Container) {
			kvs := e.get(t, k)
			if len(kvs) == 0 {
				continue
			}
			revs[k] = kvs[0].ModRevision
		}
	}
	return revs
}

func (e *env) restartHostAgent(t *testing.T) {
	e.Kubectl(t, "-n", "uspace-system", "delete", "pod", "-l", "app.kubernetes.io/name=uspace-host-agent", "--wait=true")
	e.WaitHostAgent(t)
}

func (e *env) restartKubelet(t *testing.T) {
	e.RestartKubelet(t)
	e.waitNodeHeartbeat(t)
}

func (e *env) restartContainerd(t *testing.T) {
	e.RestartContainerd(t)
	e.waitNodeHeartbeat(t)
}

// waitNodeHeartbeat waits for the node's Ready condition to be renewed
// after now: kubelet has synced with the runtime again.
func (e *env) waitNodeHeartbeat(t *testing.T) {
	t.Helper()
	since := time.Now().Add(-time.Second)
	e.WaitFor(t, "a fresh node heartbeat", 2*time.Minute, func() error {
		out, err := e.KubectlErr("get", "node", e.Name, "-o",
			`jsonpath={range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}`)
		if err != nil {
			return err
		}
		var status, at string
		if _, err := fmt.Sscan(out, &status, &at); err != nil {
			return fmt.Errorf("node Ready condition %q: %w", out, err)
		}
		hb, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return err
		}
		return errIf(status != "True" || !hb.After(since), "node Ready=%s, heartbeat %s", status, at)
	})
}

// sandboxRecreated: vpp-b's sandbox dies (its pause process killed), so
// kubelet stops the pod (CNI DEL of the old sandbox) and runs it again in
// a new sandbox (CNI ADD under a new container ID, the app container
// restarted). Nothing of the old sandbox stays in etcd or VPP, the new
// container agent finds the new container by the same pod name, and vpp-a
// pings vpp-b at its new address.
func (e *env) sandboxRecreated(t *testing.T) {
	a, old := e.pod(t, "vpp-a"), e.pod(t, "vpp-b")
	out, err := e.Crictl("inspectp", old.Container)
	if err != nil {
		t.Fatal(err)
	}
	var sandbox struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &sandbox); err != nil || sandbox.Info.Pid <= 1 {
		t.Fatalf("crictl inspectp %s: pid %d, %v", old.Container, sandbox.Info.Pid, err)
	}
	if err := syscall.Kill(sandbox.Info.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill vpp-b's pause (pid %d): %v", sandbox.Info.Pid, err)
	}
	var b pod
	e.WaitFor(t, "vpp-b in a new sandbox", 3*time.Minute, func() error {
		m := e.metasOf(t, "vpp-b")
		if len(m) != 1 || strings.Contains(m[0], old.Container) {
			return fmt.Errorf("metas of vpp-b: %v", m)
		}
		_, err := e.KubectlErr("wait", "--for=condition=Ready", "--timeout=2s", "pod/vpp-b")
		return err
	})
	b = e.pod(t, "vpp-b")
	e.waitContainerReady(t, b)
	e.gone(t, old, time.Minute)
	e.ping(t, "vpp-a", b.IP)
	e.ping(t, "vpp-b", a.IP)
}

// endpointsReopened follows the host agent pod's restart: the new pod
// opened vpp-a's and vpp-b's endpoints again, and each pod's container
// agent, which holds no credential, is watching through its own: a route
// added to its net1 intent reaches its VPP, and goes when the intent is
// put back.
func (e *env) endpointsReopened(t *testing.T) {
	pods := []pod{e.pod(t, "vpp-a"), e.pod(t, "vpp-b")}
	logs := e.Kubectl(t, "-n", "uspace-system", "logs", "-l", "app.kubernetes.io/name=uspace-host-agent", "--tail=-1")
	for _, p := range pods {
		if !endpointOpened(logs, p.Container) {
			t.Errorf("the restarted host agent has not opened the endpoint of %s:\n%s", p.Container, logs)
		}
	}
	const dst = "192.0.2.0/24"
	route := func(p pod, want bool) {
		t.Helper()
		e.WaitFor(t, fmt.Sprintf("pod %s's VPP with route %s = %v", p.Name, dst, want), time.Minute, func() error {
			out, err := e.KubectlErr("exec", p.Name, "--", "vppctl", "show", "ip", "fib", dst)
			if err != nil {
				return err
			}
			return errIf(strings.Contains(out, dst) != want, "show ip fib %s:\n%s", dst, out)
		})
	}
	for _, p := range pods {
		ci := e.containerIntent(t, p)
		orig := e.get(t, schema.ContainerInterfaceKey(kube.NodeName, p.Container, "net1"))[0].Value
		ci.Routes = append(ci.Routes, schema.Route{Dst: dst, GW: "10.56.217.1"})
		e.put(t, schema.ContainerInterfaceKey(kube.NodeName, p.Container, "net1"), &ci)
		route(p, true)
		e.putRaw(t, schema.ContainerInterfaceKey(kube.NodeName, p.Container, "net1"), orig)
		route(p, false)
	}
}
