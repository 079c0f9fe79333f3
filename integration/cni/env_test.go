package cni_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Upstream README example (HEAD), unchanged: memif, bridgeName "4".
const readmeMemif = `{"cniVersion":"0.3.1","type":"userspace","name":"memif-network",
 "host":{"engine":"vpp","iftype":"memif","netType":"bridge",
         "memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeName":"4"}},
 "container":{"engine":"vpp","iftype":"memif","netType":"interface",
              "memif":{"role":"slave","mode":"ethernet"}},
 "ipam":{"type":"host-local","subnet":"10.56.217.0/24","rangeStart":"10.56.217.131",
         "rangeEnd":"10.56.217.190","routes":[{"dst":"0.0.0.0/0"}],"gateway":"10.56.217.1"}}`

// Seed-era README: the same with the int bridgeId.
const seedMemif = `{"cniVersion":"0.3.1","type":"userspace","name":"memif-network",
 "host":{"engine":"vpp","iftype":"memif","netType":"bridge",
         "memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeId":4}},
 "container":{"engine":"vpp","iftype":"memif","netType":"interface",
              "memif":{"role":"slave","mode":"ethernet"}},
 "ipam":{"type":"host-local","subnet":"10.56.217.0/24","rangeStart":"10.56.217.131",
         "rangeEnd":"10.56.217.190","routes":[{"dst":"0.0.0.0/0"}],"gateway":"10.56.217.1"}}`

// The HEAD NAD form: kubeconfig, logFile, logLevel added (the kubeconfig
// does not exist here: a warning, as upstream).
const headNAD = `{"cniVersion":"0.3.1","type":"userspace","name":"userspace-vpp-net",
 "kubeconfig":"/etc/cni/net.d/multus.d/multus.kubeconfig","logFile":"LOGFILE","logLevel":"debug",
 "host":{"engine":"vpp","iftype":"memif","netType":"bridge",
         "memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeName":"12"}},
 "container":{"engine":"vpp","iftype":"memif","netType":"interface",
              "memif":{"role":"slave","mode":"ethernet"}},
 "ipam":{"type":"host-local","subnet":"10.77.217.0/24","routes":[{"dst":"0.0.0.0/0"}],"gateway":"10.77.217.1"}}`

// The OVS README variant with the engine VPP can run: vhost-user.
const vhostVPP = `{"cniVersion":"1.0.0","type":"userspace","name":"vhost-network",
 "host":{"engine":"vpp","iftype":"vhostuser","netType":"bridge",
         "vhost":{"mode":"client"},"bridge":{"bridgeName":"7"}},
 "container":{"engine":"vpp","iftype":"vhostuser","netType":"interface",
              "vhost":{"mode":"server"}},
 "ipam":{"type":"host-local","subnet":"10.88.0.0/24","gateway":"10.88.0.1"}}`

// cniBinDir holds what libcni executes: the built userspace plugin and the
// real host-local IPAM plugin of containernetworking/plugins.
func cniBinDir(t testing.TB) string {
	t.Helper()
	return binaries.Dir(t, "userspace", "host-local")
}

func TestMain(m *testing.M) { os.Exit(harness.RunIsolated(m)) }

// env is one test's world: etcd, optionally a host (vppsim + real agent),
// the plugin directory, a libcni with its own cache, an IPAM data dir.
type env struct {
	t        *testing.T
	etcd     *harness.Etcd
	host     *harness.Host
	hostName string
	bin      string
	confDir  string
	cacheDir string
	ipamDir  string
	cni      *libcni.CNIConfig
}

func newEnv(t *testing.T, withHost bool) *env {
	t.Helper()
	e := newEnvNoHost(t)
	if withHost {
		e.host = e.etcd.StartHost(t, e.hostName)
	}
	return e
}

// newEnvOn is newEnv with a host whose dataplanes opts choose (real VPP).
func newEnvOn(t *testing.T, opts harness.HostOptions) *env {
	t.Helper()
	e := newEnvNoHost(t)
	e.host = e.etcd.StartHostOn(t, e.hostName, opts)
	return e
}

func newEnvNoHost(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, hostName: "node-1", bin: cniBinDir(t), confDir: t.TempDir(), cacheDir: t.TempDir(), ipamDir: t.TempDir()}
	e.etcd = harness.StartEtcd(t)
	e.cni = libcni.NewCNIConfigWithCacheDir([]string{e.bin}, e.cacheDir, nil)
	return e
}

// sharedDir is where sockets go: the agent's --shared-dir when there is a
// host, else a short temporary directory.
func (e *env) sharedDir() string {
	if e.host != nil {
		return e.host.SharedDir
	}
	return harness.ShortTempDir(e.t)
}

// netconf takes an upstream config unchanged and adds only what a
// deployment adds: where etcd is (the uspace section), which host this is,
// the shared dir of this test's agent, the IPAM data dir. It writes it as a
// .conf file and loads it the way runtimes and cnitool do.
func (e *env) netconf(conf string, edit func(m map[string]any)) *libcni.NetworkConfigList {
	e.t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(conf), &m); err != nil {
		e.t.Fatalf("test config: %v", err)
	}
	m["sharedDir"] = e.sharedDir()
	m["uspace"] = map[string]any{
		"etcd":       map[string]any{"endpoints": e.etcd.Endpoints},
		"host":       e.hostName,
		"addTimeout": "10s",
	}
	if ipam, ok := m["ipam"].(map[string]any); ok {
		ipam["dataDir"] = e.ipamDir
	}
	if lf, ok := m["logFile"].(string); ok && lf == "LOGFILE" {
		m["logFile"] = filepath.Join(e.confDir, "plugin.log")
	}
	if edit != nil {
		edit(m)
	}
	return e.netconfRaw(m)
}

func (e *env) netconfRaw(m map[string]any) *libcni.NetworkConfigList {
	e.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		e.t.Fatal(err)
	}
	name, _ := m["name"].(string)
	dir := e.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "90-userspace.conf"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	list, err := libcni.LoadNetworkConf(dir, name)
	if err != nil {
		e.t.Fatalf("libcni cannot load %s: %v", b, err)
	}
	return list
}

// testNS is a network namespace made for one container.
type testNS struct{ name string }

func (n *testNS) Path() string { return "/var/run/netns/" + n.name }

// Delete removes the namespace (idempotent).
func (n *testNS) Delete(t *testing.T) {
	if out, err := exec.Command("ip", "netns", "delete", n.name).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "No such file") {
		t.Errorf("ip netns delete %s: %v: %s", n.name, err, out)
	}
}

// newNS makes a network namespace with `ip netns add`. Not
// testutils.NewNS: it ends the OS thread it ran on, and a child started
// from that thread with Pdeathsig (the harness's agent) is killed with it.
func newNS(t *testing.T) *testNS {
	t.Helper()
	n := &testNS{name: "uspace-cni-" + newNSName()}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", n.name, err, out)
	}
	t.Cleanup(func() { n.Delete(t) })
	return n
}

// newNSName is a random name part, unique to this test run.
func newNSName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}

// rt is the runtime config Multus would send: its own K8S_POD_* pairs and
// kubelet's after them, duplicates included.
func rt(id, netns, ifname string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: id,
		NetNS:       netns,
		IfName:      ifname,
		Args: [][2]string{
			{"IgnoreUnknown", "true"},
			{"K8S_POD_NAMESPACE", "default"},
			{"K8S_POD_NAME", "pod-" + id[:min(8, len(id))]},
			{"K8S_POD_INFRA_CONTAINER_ID", id},
			{"K8S_POD_UID", "uid-" + id[:min(8, len(id))]},
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", "default"},
		},
	}
}

func bg() context.Context { return context.Background() }

// cniError extracts the plugin's CNI error.
func cniError(t *testing.T, err error) *types.Error {
	t.Helper()
	var e *types.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a CNI error", err, err)
	}
	return e
}

// keys lists every key under prefix.
func (e *env) keys(prefix string) []string {
	e.t.Helper()
	kvs, _, err := e.etcd.Store.List(bg(), prefix)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key)
	}
	return out
}

// hostKeys is every intent and status key of this host except the agent's
// registration.
func (e *env) hostKeys() []string {
	var out []string
	for _, k := range append(e.keys(schema.HostPrefix(e.hostName)), e.keys(schema.StatusHostPrefix(e.hostName))...) {
		if k != schema.AgentKey(e.hostName) {
			out = append(out, k)
		}
	}
	return out
}

// etcdctlKeys reads keys with the real etcdctl binary.
func (e *env) etcdctlKeys(prefix string) []string {
	e.t.Helper()
	out, err := exec.Command(binaries.Path(e.t, "etcdctl"), "--endpoints", strings.Join(e.etcd.Endpoints, ","),
		"get", "--prefix", "--keys-only", prefix).CombinedOutput()
	if err != nil {
		e.t.Fatalf("etcdctl: %v\n%s", err, out)
	}
	var keys []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			keys = append(keys, l)
		}
	}
	sort.Strings(keys)
	return keys
}

func (e *env) etcdctlGet(key string) string {
	e.t.Helper()
	out, err := exec.Command(binaries.Path(e.t, "etcdctl"), "--endpoints", strings.Join(e.etcd.Endpoints, ","),
		"get", "--print-value-only", key).CombinedOutput()
	if err != nil {
		e.t.Fatalf("etcdctl get %s: %v\n%s", key, err, out)
	}
	return strings.TrimSpace(string(out))
}

// ipamFiles lists the IPs reserved in host-local's data dir of network:
// one file per reserved IP, named by it. host-local also keeps "lock" and
// "last_reserved_ip.<range>" there, which are not reservations.
func (e *env) ipamFiles(network string) []string {
	entries, _ := os.ReadDir(filepath.Join(e.ipamDir, network))
	var out []string
	for _, en := range entries {
		if net.ParseIP(en.Name()) != nil {
			out = append(out, en.Name())
		}
	}
	return out
}

// ipamOwner is who holds a reservation: host-local writes
// "<containerID>\r\n<ifname>" into the IP's file.
func (e *env) ipamOwner(network, ip string) string {
	b, err := os.ReadFile(filepath.Join(e.ipamDir, network, ip))
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(string(b), "\r\n", "/")
}

// holdIPAMLock takes host-local's lock of network (flock on
// <dataDir>/<network>/lock) so that an IPAM ADD blocks before reserving,
// until the returned func releases it.
func (e *env) holdIPAMLock(network string) (release func()) {
	e.t.Helper()
	dir := filepath.Join(e.ipamDir, network)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		e.t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { f.Close() }) }
	e.t.Cleanup(release)
	return release
}

// ipamLockWaiters counts the processes blocked on host-local's lock of
// network, from /proc/locks: a waiter is a "->" line on the lock file's
// inode (field "MAJ:MIN:INODE").
func (e *env) ipamLockWaiters(network string) int {
	e.t.Helper()
	fi, err := os.Stat(filepath.Join(e.ipamDir, network, "lock"))
	if err != nil {
		e.t.Fatal(err)
	}
	ino := fmt.Sprint(fi.Sys().(*syscall.Stat_t).Ino)
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if !slices.Contains(f, "->") {
			continue
		}
		for _, x := range f {
			if p := strings.Split(x, ":"); len(p) == 3 && p[2] == ino {
				n++
				break
			}
		}
	}
	return n
}

// eventually polls cond (the agent's removal is asynchronous where DEL
// does not wait: no agent, or timing out).
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type vppsimBD = vppsim.BridgeDomain

func storePut(key string, val []byte) store.Op { return store.Op{Key: key, Value: val} }

func storeDelete(key string) store.Op { return store.Op{Key: key, Delete: true} }

// tcpProxy forwards to etcd until cut: then etcd is unreachable for the
// plugin (connections reset, new ones refused) while the test still reads
// etcd directly.
type tcpProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	target = strings.TrimPrefix(strings.TrimPrefix(target, "http://"), "https://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(p.Cut)
	return p
}

func (p *tcpProxy) Endpoint() string { return "http://" + p.ln.Addr().String() }

// Cut closes the listener and every forwarded connection.
func (p *tcpProxy) Cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
