package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
)

// The upstream userspace CNI README config (memif into bridge domain 4),
// in CNI 1.0.0, with host-local IPAM. Each host gets its own subnet, IPAM
// data dir and shared dir, as each node of a cluster has.
const memifConf = `{"cniVersion":"1.0.0","type":"userspace","name":"memif-network",
 "host":{"engine":"vpp","iftype":"memif","netType":"bridge",
         "memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeName":"BRIDGE"}},
 "container":{"engine":"vpp","iftype":"memif","netType":"interface",
              "memif":{"role":"slave","mode":"ethernet"}},
 "ipam":{"type":"host-local","routes":[{"dst":"0.0.0.0/0"}]}}`

// cniBinDir holds what libcni executes: the built userspace plugin and the
// real host-local IPAM plugin of containernetworking/plugins.
func cniBinDir(t testing.TB) string {
	t.Helper()
	return binaries.Dir(t, "userspace", "host-local")
}

// cniHost is one host's CNI runtime: libcni with its own cache, the
// network config as that host's runtime loads it (the uspace section
// naming the etcd cluster and the host), its IPAM data dir.
type cniHost struct {
	h       *harness.Host
	network string
	cni     *libcni.CNIConfig
	list    *libcni.NetworkConfigList
	ipamDir string
}

// newCNIHost sets up the CNI runtime of h for network memif-network
// (bridge domain 4, IPAM subnet 10.56.<n>.0/24), reaching etcd at
// endpoints.
func newCNIHost(t testing.TB, h *harness.Host, n int, endpoints []string) *cniHost {
	return newCNINetwork(t, h, cniNet{name: "memif-network", bridge: 4, net24: fmt.Sprintf("10.56.%d", n)}, endpoints)
}

// cniNet is one network of the tests: its name, bridge domain, IPAM
// subnet <net24>.0/24 (gateway .1) and the part of it this host hands out
// (first..last, 0: all), the routes through its gateway (nil: the default
// route) and its VNI (0: the network stays on its host).
type cniNet struct {
	name        string
	bridge      int
	net24       string
	first, last int
	routes      []string
	vni         uint32
}

// newCNINetwork is newCNIHost for any network.
func newCNINetwork(t testing.TB, h *harness.Host, n cniNet, endpoints []string) *cniHost {
	t.Helper()
	c := &cniHost{h: h, network: n.name, ipamDir: t.TempDir()}
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.Replace(memifConf, "BRIDGE", strconv.Itoa(n.bridge), 1)), &m); err != nil {
		t.Fatal(err)
	}
	m["name"] = n.name
	m["sharedDir"] = h.SharedDir
	u := map[string]any{
		"etcd":       map[string]any{"endpoints": endpoints},
		"host":       h.Name,
		"addTimeout": "30s",
		"delTimeout": "10s",
	}
	if n.vni != 0 {
		u["vni"] = n.vni
	}
	m["uspace"] = u
	ipam := m["ipam"].(map[string]any)
	ipam["subnet"] = n.net24 + ".0/24"
	ipam["gateway"] = n.net24 + ".1"
	if n.routes != nil {
		var rs []any
		for _, r := range n.routes {
			rs = append(rs, map[string]any{"dst": r})
		}
		ipam["routes"] = rs
	}
	if n.first != 0 {
		ipam["rangeStart"] = fmt.Sprintf("%s.%d", n.net24, n.first)
		ipam["rangeEnd"] = fmt.Sprintf("%s.%d", n.net24, n.last)
	}
	ipam["dataDir"] = c.ipamDir
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "90-userspace.conf"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if c.list, err = libcni.LoadNetworkConf(dir, n.name); err != nil {
		t.Fatalf("libcni cannot load %s: %v", b, err)
	}
	c.cni = libcni.NewCNIConfigWithCacheDir([]string{cniBinDir(t)}, t.TempDir(), nil)
	return c
}

// rt is the runtime config kubelet (through Multus) would pass.
func rt(id, netns, ifname string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: id,
		NetNS:       netns,
		IfName:      ifname,
		Args: [][2]string{
			{"IgnoreUnknown", "true"},
			{"K8S_POD_NAMESPACE", "default"},
			{"K8S_POD_NAME", "pod-" + id},
			{"K8S_POD_INFRA_CONTAINER_ID", id},
		},
	}
}

// add runs CNI ADD of interface net1 through libcni and returns the
// result in CNI 1.0.0.
func (c *cniHost) add(ctx context.Context, id, netns string) (*types100.Result, error) {
	return c.addIf(ctx, id, netns, "net1")
}

func (c *cniHost) addIf(ctx context.Context, id, netns, ifname string) (*types100.Result, error) {
	res, err := c.cni.AddNetworkList(ctx, c.list, rt(id, netns, ifname))
	if err != nil {
		return nil, fmt.Errorf("ADD %s/%s on %s: %w", id, ifname, c.h.Name, err)
	}
	cur, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("ADD %s/%s on %s: result: %w", id, ifname, c.h.Name, err)
	}
	return cur, nil
}

// del runs CNI DEL of interface net1 through libcni.
func (c *cniHost) del(ctx context.Context, id, netns string) error {
	return c.delIf(ctx, id, netns, "net1")
}

func (c *cniHost) delIf(ctx context.Context, id, netns, ifname string) error {
	if err := c.cni.DelNetworkList(ctx, c.list, rt(id, netns, ifname)); err != nil {
		return fmt.Errorf("DEL %s/%s on %s: %w", id, ifname, c.h.Name, err)
	}
	return nil
}

// reservations lists the IPs host-local holds for this host.
func (c *cniHost) reservations() []string {
	entries, _ := os.ReadDir(filepath.Join(c.ipamDir, c.network))
	var out []string
	for _, en := range entries {
		if net.ParseIP(en.Name()) != nil { // not "lock" nor "last_reserved_ip.<range>"
			out = append(out, en.Name())
		}
	}
	return out
}

// newNS makes a network namespace for one container.
func newNS(t testing.TB) ns.NetNS {
	t.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() {
		n.Close()
		_ = testutils.UnmountNS(n)
	})
	return n
}
