package security_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/endpoint"
	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// etcdctlIn runs etcdctl against the endpoint as a process in network
// namespace netns ("" for the test's own) and returns its output and
// whether it succeeded.
func etcdctlIn(t *testing.T, netns string, args ...string) (string, bool) {
	t.Helper()
	cmd := append([]string{binaries.Path(t, "etcdctl"), "--endpoints", endpoint.URL, "--dial-timeout", "2s", "--command-timeout", "5s"}, args...)
	if netns != "" {
		cmd = append([]string{"nsenter", "--net=" + netns}, cmd...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Env = noEtcdEnv()
	out, err := c.CombinedOutput()
	return string(out), err == nil
}

// The per-container endpoints of a host agent that runs with nothing but
// its own identity (uspace-host-a) on etcd with auth and TLS: a process
// in container ca's network namespace, with no credential at all, reads
// ca's intents and statuses and writes ca's statuses through its
// endpoint, and is refused (etcd's permission denied) everything of
// container cb, of the host beyond ca, of host ab and of the cluster; a
// process outside every container's namespace reaches no endpoint.
func TestContainerEndpointOnlyItsContainer(t *testing.T) {
	sc := newSecretScan(t)
	e := startSecureEtcd(t, sc)
	e.enableAuth()
	hostID := e.addIdentity(rbac.HostRole(hostA))
	nsA, nsB := newNetns(t), newNetns(t)
	put := func(key string, o schema.Object) {
		t.Helper()
		b, err := schema.Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Root.Apply(context.Background(), store.Op{Key: key, Value: b}); err != nil {
			t.Fatal(err)
		}
	}
	put(schema.ContainerMetaKey(hostA, "ca"), &schema.ContainerMeta{Host: hostA, Container: "ca", Netns: nsA})
	put(schema.ContainerMetaKey(hostA, "cb"), &schema.ContainerMeta{Host: hostA, Container: "cb", Netns: nsB})
	bStatus := schema.StatusKey(schema.Key{Kind: schema.KindContainerInterfaceKey, Host: hostA, Container: "cb", Interface: "net1"})
	seeded := seed(t, e, schema.ContainerInterfaceKey(hostA, "cb", "net1"), bStatus,
		schema.InterfaceKey(hostA, "cb", "net1"), schema.ContainerMetaKey(hostB, "ca"))
	startHostAgent(t, sc, e, hostA, []string{"--etcd-endpoints", strings.Join(e.Endpoints, ","), "--etcd-cacert", e.CA,
		"--etcd-cert", e.AnonCert, "--etcd-key", e.AnonKey, "--etcd-user", hostID.Name, "--etcd-password-file", hostID.PasswordFile})

	deadline := time.Now().Add(30 * time.Second)
	for {
		out, ok := etcdctlIn(t, nsA, "get", "--prefix", "--keys-only", schema.ContainersPrefix(hostA))
		if ok {
			keys := strings.Fields(out)
			if len(keys) != 1 || keys[0] != schema.ContainerMetaKey(hostA, "ca") {
				t.Errorf("the host's containers through ca's endpoint: %q, want ca's meta alone", keys)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ca's endpoint never answered: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	aStatus := schema.StatusKey(schema.Key{Kind: schema.KindContainerInterfaceKey, Host: hostA, Container: "ca", Interface: "net1"})
	if out, ok := etcdctlIn(t, nsA, "put", aStatus, `{"apiVersion":"uspace.io/v1","kind":"InterfaceStatus"}`); !ok {
		t.Errorf("ca writes its own status through its endpoint: %s", out)
	}
	if out, ok := etcdctlIn(t, nsA, "get", aStatus); !ok || !strings.Contains(out, "InterfaceStatus") {
		t.Errorf("ca reads its own status: %s", out)
	}
	for _, try := range [][]string{
		{"get", "--prefix", schema.ContainerPrefix(hostA, "cb")},
		{"get", bStatus},
		{"put", bStatus, "{}"},
		{"del", "--prefix", schema.StatusContainersPrefix(hostA)},
		{"put", schema.ContainerInterfaceKey(hostA, "ca", "net1"), "{}"},
		{"get", "--prefix", schema.InterfacesPrefix(hostA)},
		{"get", schema.AgentKey(hostA)},
		{"get", "--prefix", schema.HostPrefix(hostB)},
		{"get", "--prefix", schema.NetworksPrefix()},
		{"get", "--prefix", schema.Root},
		{"get", "--from-key", ""},
		{"lease", "grant", "10"},
		{"user", "list"},
		{"compaction", "1"},
	} {
		out, ok := etcdctlIn(t, nsA, try...)
		if ok || !strings.Contains(out, "permission denied") {
			t.Errorf("%v through ca's endpoint: %s, want permission denied", try, out)
		}
		sc.add("etcdctl", out)
	}
	if out, _ := etcdctlIn(t, nsA, "watch", "--prefix", schema.ContainerPrefix(hostA, "cb")); !strings.Contains(out, "permission denied") {
		t.Errorf("watch of cb's intents through ca's endpoint: %s, want permission denied", out)
	}
	if out, ok := etcdctlIn(t, nsB, "get", "--prefix", schema.ContainerPrefix(hostA, "ca")); ok || !strings.Contains(out, "permission denied") {
		t.Errorf("ca's intents through cb's endpoint: %s, want permission denied", out)
	}
	if out, ok := etcdctlIn(t, "", "get", "--prefix", schema.ContainerPrefix(hostA, "ca")); ok || strings.Contains(out, schema.ContainerMetaKey(hostA, "ca")) {
		t.Errorf("a process outside every container's namespace reached an endpoint: %s", out)
	}
	untouched(t, e, seeded)
}
