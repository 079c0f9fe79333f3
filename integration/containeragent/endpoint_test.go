package containeragent_test

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/uspace-io/uspace/agent/endpoint"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
)

// A container agent run in its container's network namespace with no
// etcd endpoint, credential or container ID finds the host agent's
// endpoint there, learns its container through it and converges. It
// rides out a host agent restart (an intent written meanwhile is applied
// after) and its own restart; the meta's delete (the CNI DEL) closes the
// endpoint, so nothing of the host agent keeps the namespace alive.
func TestConvergesThroughItsEndpoint(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("network namespaces need root")
	}
	e := harness.StartEtcd(t)
	h := e.StartHost(t, host)
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(); _ = testutils.UnmountNS(n) })
	shared := harness.ShortTempDir(t)
	const id = "ctr-endpoint"
	m := meta(id, "net1")
	m.Netns = n.Path()
	rev := e.Put(t, map[string]schema.Object{
		schema.ContainerMetaKey(host, id): m,
		ifKey(id, "net1"):                 memif(shared, id, "net1", "10.1.1.2/24"),
	})
	c := e.StartContainerOn(t, host, shared, harness.ContainerOptions{EndpointNetns: n.Path()}, nil)
	waitReady(t, e, id, "net1", rev)
	if !strings.Contains(harness.HTTPGet(t, "http://"+h.MetricsAddr+"/metrics"), "uspace_container_endpoints 1") {
		t.Error("the host agent does not count the endpoint it serves")
	}

	if err := h.Agent.Stop(10 * time.Second); err != nil {
		t.Fatalf("host agent stop: %v", err)
	}
	m.Interfaces = []string{"net1", "net2"}
	rev = e.Put(t, map[string]schema.Object{
		schema.ContainerMetaKey(host, id): m,
		ifKey(id, "net2"):                 memif(shared, id, "net2", "10.1.2.2/24"),
	})
	h.RestartAgent(t)
	waitReady(t, e, id, "net2", rev)

	if err := c.Agent.Stop(10 * time.Second); err != nil {
		t.Fatalf("container agent stop: %v", err)
	}
	if err := c.Agent.Start(); err != nil {
		t.Fatal(err)
	}
	e.Delete(t, ifKey(id, "net1"))
	e.WaitGone(t, statusKey(id, "net1"))
	if got := len(c.VPP.Snapshot().Memifs); got != 1 {
		t.Errorf("%d memifs after net1's delete through the restarted agent, want 1", got)
	}

	if !listening(t, n) {
		t.Fatal("no endpoint listening in the container's namespace")
	}
	e.Delete(t, schema.ContainerMetaKey(host, id), ifKey(id, "net2"))
	deadline := time.Now().Add(harness.WaitTimeout)
	for listening(t, n) {
		if time.Now().After(deadline) {
			t.Fatal("the endpoint still listens in the namespace after the container's meta went")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listening: a connection to the endpoint's name from netns n is
// accepted (refused once nothing listens there).
func listening(t *testing.T, n ns.NetNS) bool {
	t.Helper()
	var c net.Conn
	_ = n.Do(func(ns.NetNS) error {
		var err error
		c, err = net.Dial("unix", endpoint.Name)
		return err
	})
	if c != nil {
		c.Close()
	}
	return c != nil
}
