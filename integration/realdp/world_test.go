package realdp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/schema"
)

const hostName = "node1"

func TestMain(m *testing.M) { os.Exit(harness.RunIsolated(m)) }

// world is one test's set-up: etcd, a host whose dataplanes are real, and
// libcni running the built plugin and the real host-local.
type world struct {
	t       *testing.T
	etcd    *harness.Etcd
	host    *harness.Host
	cni     *libcni.CNIConfig
	ipamDir string
}

func newWorld(t *testing.T, opts harness.HostOptions) *world {
	t.Helper()
	if opts.RealVPP {
		realdp.NeedVPP(t)
	}
	if opts.RealSPDK {
		realdp.NeedSPDK(t)
	}
	w := &world{t: t, ipamDir: t.TempDir()}
	w.etcd = harness.StartEtcd(t)
	w.host = w.etcd.StartHostOn(t, hostName, opts)
	if w.host.RealVPP != nil {
		t.Logf("host VPP: %s", w.host.RealVPP.Version(t))
	}
	if w.host.RealSPDK != nil {
		t.Logf("host SPDK: %s", w.host.RealSPDK.Version(t))
	}
	w.cni = libcni.NewCNIConfigWithCacheDir([]string{binaries.Dir(t, "userspace", "host-local")}, t.TempDir(), nil)
	return w
}

// on is the world as seen from a subtest: the same etcd, host and libcni,
// failures reported to t.
func (w *world) on(t *testing.T) *world {
	c := *w
	c.t = t
	return &c
}

// netconf is an upstream userspace CNI config plus what a deployment adds:
// where etcd is, which host this is, the shared dir, the IPAM data dir.
func (w *world) netconf(conf string) *libcni.NetworkConfigList {
	w.t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(conf), &m); err != nil {
		w.t.Fatalf("test config: %v", err)
	}
	m["sharedDir"] = w.host.SharedDir
	u, _ := m["uspace"].(map[string]any)
	if u == nil {
		u = map[string]any{}
	}
	u["etcd"], u["host"], u["addTimeout"] = map[string]any{"endpoints": w.etcd.Endpoints}, w.host.Name, "20s"
	m["uspace"] = u
	if ipam, ok := m["ipam"].(map[string]any); ok {
		ipam["dataDir"] = w.ipamDir
	}
	b, err := json.Marshal(m)
	if err != nil {
		w.t.Fatal(err)
	}
	list, err := libcni.ConfListFromConf(mustConf(w.t, b))
	if err != nil {
		w.t.Fatal(err)
	}
	return list
}

func mustConf(t *testing.T, b []byte) *libcni.PluginConfig {
	t.Helper()
	c, err := libcni.ConfFromBytes(b)
	if err != nil {
		t.Fatalf("libcni cannot load %s: %v", b, err)
	}
	return c
}

// container is a sandbox: a network namespace, its ID, and once started a
// container agent with a real VPP inside the namespace.
type container struct {
	id, netns string
	host      string // the host it was added on
	ctr       *harness.Container
	ip        string // first address the ADD returned, without prefix
}

func newContainer(t *testing.T) *container {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "uspace-rdp-" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", name).Run() })
	return &container{id: "rdp" + hex.EncodeToString(b[:]), netns: "/var/run/netns/" + name}
}

func (w *world) rt(c *container, ifname string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: c.id, NetNS: c.netns, IfName: ifname}
}

// add runs the CNI ADD and keeps the container's first IP.
func (w *world) add(list *libcni.NetworkConfigList, c *container, ifname string) *types100.Result {
	w.t.Helper()
	c.host = w.host.Name
	r, err := w.cni.AddNetworkList(context.Background(), list, w.rt(c, ifname))
	if err != nil {
		w.t.Fatalf("CNI ADD %s %s: %v", c.id, ifname, err)
	}
	res, err := types100.NewResultFromResult(r)
	if err != nil {
		w.t.Fatal(err)
	}
	if len(res.IPs) > 0 {
		c.ip = res.IPs[0].Address.IP.String()
	}
	return res
}

func (w *world) del(list *libcni.NetworkConfigList, c *container, ifname string) {
	w.t.Helper()
	if err := w.cni.DelNetworkList(context.Background(), list, w.rt(c, ifname)); err != nil {
		w.t.Fatalf("CNI DEL %s %s: %v", c.id, ifname, err)
	}
}

// startAgent runs the container's agent with a real VPP in its netns.
func (w *world) startAgent(c *container) {
	w.t.Helper()
	c.ctr = w.etcd.StartContainerOn(w.t, w.host.Name, w.host.SharedDir,
		harness.ContainerOptions{RealVPP: true, Netns: c.netns}, []string{"--container-id", c.id})
}

func ctrStatusKey(c *container, ifname string) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindContainerInterfaceKey, Host: c.host, Container: c.id, Interface: ifname})
}

func hostStatusKey(c *container, ifname string) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: c.host, Container: c.id, Interface: ifname})
}

func (w *world) waitCtrReady(c *container, ifname string) *schema.InterfaceStatus {
	w.t.Helper()
	return harness.WaitStatus[schema.InterfaceStatus](w.t, w.etcd, ctrStatusKey(c, ifname), 0, harness.Ready[schema.InterfaceStatus])
}

// ping pings dst from v until replies come back, bounded; it returns the
// last statistics.
func ping(t *testing.T, v *realdp.VPP, dst string) string {
	t.Helper()
	got, err := v.Ping(dst, 45*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// ifNames are the interface names `show interface` lists.
func ifNames(t *testing.T, v *realdp.VPP) []string {
	t.Helper()
	var names []string
	for _, l := range strings.Split(v.CLI(t, "show interface"), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && !strings.HasPrefix(l, " ") && f[0] != "Name" {
			if _, err := strconv.Atoi(f[1]); err == nil {
				names = append(names, f[0])
			}
		}
	}
	return names
}

// memifSocketIDs are the ids `show memif` lists under sockets.
func memifSocketIDs(t *testing.T, v *realdp.VPP) []string {
	t.Helper()
	var ids []string
	in := false
	for _, l := range strings.Split(v.CLI(t, "show memif"), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "sockets":
			in = true
		case len(f) > 0 && f[0] == "id":
		case len(f) == 0 || strings.HasPrefix(l, "interface"):
			in = false
		case in:
			ids = append(ids, f[0])
		}
	}
	return ids
}

// eventually polls cond (the state of a real VPP, which sends no event a
// test could wait on) until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last seen:\n%s", what, d, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
