package kube

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/spawn"
)

// The node's network plan. Its address sits on a bridge of its own with
// no uplink, so nothing a test sends leaves the machine; the bridge CNI
// plugin makes the pods' bridge.
const (
	NodeName   = "uskube"
	nodeBridge = "uskube0"
	nodeAddr   = "10.211.0.1/24"
	podBridge  = "uskpod0"
	podCIDR    = "10.212.0.0/24"
	// CNIBinDir is where deployments/kubernetes/ installs the plugin: the
	// node's Multus looks there first.
	CNIBinDir = "/opt/cni/bin"
	// PauseImage is the sandbox image, built here from testdata/pause.
	PauseImage = "uspace-test.local/pause:1"
	// podCgroup is kubelet's cgroupRoot, weighted as podCgroupShares
	// processes of the machine (host.go, makeCgroup).
	podCgroup       = "uskube"
	podCgroupShares = 8192
)

// Ports on the node's address.
const (
	etcdPort      = 2379
	apiserverPort = 6443
)

// Options shape a node.
type Options struct {
	// Images are Docker images (built beforehand) imported into the
	// node's containerd.
	Images []string
}

// Node is a single-node Kubernetes on this machine: its own etcd,
// apiserver, controller-manager, scheduler, kubelet and containerd, Multus
// as the CNI. One at a time per machine (a lock file serialises runs).
type Node struct {
	Name string
	// IP is the node's address; Dir its scratch directory (fixed, so a
	// run that died is cleaned up by the next).
	IP  string
	Dir string
	// Kubeconfig is the admin's (system:masters).
	Kubeconfig string
	// Up is how long the node took from nothing to Ready with its
	// default ServiceAccount.
	Up time.Duration
	// NetnsDir is where containerd keeps the pods' network namespaces
	// (CNI_NETNS), its default: a shared mount, so that the host agent's
	// pod sees the namespaces made after it started.
	NetnsDir string

	// Template fields (configs.go).
	PauseImage, Runc, PodBridge, PodCIDR, CNIBinDir, PodCgroup string

	bin   string
	pki   *pki
	host  *hostState
	procs map[string]*spawn.Proc
	order []string
}

// Start brings a node up and registers its teardown, which also runs when
// the test fails. It skips the test, in one line, where a node cannot run.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	Need(t)
	began := time.Now()
	unlock := lock(t)
	bin, err := unpack()
	if err != nil {
		unlock()
		t.Fatalf("unpack the Kubernetes binaries: %v", err)
	}
	runc, _ := exec.LookPath("runc")
	ip, _, _ := net.ParseCIDR(nodeAddr)
	n := &Node{Name: NodeName, IP: ip.String(), Dir: filepath.Join(os.TempDir(), "uspace-kube"), NetnsDir: netnsDir,
		PauseImage: PauseImage, Runc: runc, PodBridge: podBridge, PodCIDR: podCIDR, CNIBinDir: CNIBinDir, PodCgroup: "/" + podCgroup,
		bin: bin, procs: map[string]*spawn.Proc{}}
	if err := reap(n.Dir); err != nil {
		t.Logf("leftovers of an earlier node: %v", err)
	}
	_ = os.RemoveAll(LogDir())
	if err := os.MkdirAll(filepath.Join(n.Dir, "log"), 0o755); err != nil {
		unlock()
		t.Fatal(err)
	}
	if n.host, err = recordHost([]string{nodeBridge, podBridge}, podCgroup); err == nil {
		err = n.host.save(n.Dir)
	}
	if err != nil {
		unlock()
		t.Fatalf("record the machine's state: %v", err)
	}
	t.Cleanup(func() {
		n.stop(t)
		unlock()
	})
	n.prepare(t, opts)
	n.startControlPlane(t)
	n.Up = time.Since(began)
	t.Logf("node %s Ready at %s with its default ServiceAccount after %s", n.Name, n.IP, n.Up.Round(100*time.Millisecond))
	return n
}

// lock takes the machine-wide node lock, waiting for another run's node.
func lock(t testing.TB) func() {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "uspace-kube.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Logf("another Kubernetes node runs on this machine; waiting for it")
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatalf("lock %s: %v", f.Name(), err)
		}
	}
	return func() { f.Close() }
}

// reap undoes what a node left in dir (a run that died) and removes dir.
func reap(dir string) error {
	st, err := loadHostState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.RemoveAll(dir)
	}
	if err != nil {
		return err
	}
	return errors.Join(undoHost(dir, st), os.RemoveAll(dir))
}

// prepare makes everything the daemons read: the node's bridge, PKI,
// kubeconfigs, configs, the CNI bin dir; then starts containerd and
// imports the images.
func (n *Node) prepare(t testing.TB, opts Options) {
	t.Helper()
	for _, c := range [][]string{{"link", "add", nodeBridge, "type", "bridge"}, {"addr", "add", nodeAddr, "dev", nodeBridge},
		{"link", "set", nodeBridge, "up"}} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", c, err, out)
		}
	}
	if err := makeCgroup(podCgroup, podCgroupShares); err != nil {
		t.Fatal(err)
	}
	var err error
	if n.pki, err = newPKI(filepath.Join(n.Dir, "pki"), n.Name, net.ParseIP(n.IP)); err != nil {
		t.Fatalf("PKI: %v", err)
	}
	server := fmt.Sprintf("https://%s:%d", n.IP, apiserverPort)
	for _, c := range clients {
		if c.name == "apiserver-kubelet-client" {
			continue
		}
		if _, err := n.pki.kubeconfig(filepath.Join(n.Dir, "kubeconfig"), c.name, server); err != nil {
			t.Fatal(err)
		}
	}
	n.Kubeconfig = filepath.Join(n.Dir, "kubeconfig", "admin.kubeconfig")
	for _, d := range []string{"var/etcd", "var/kubelet/pki", "var/containerd", "var/cni/networks", "var/cni/multus",
		"var/log/pods", "run/containerd", "cni/bin", "cni/net.d", "etc"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for path, tmpl := range map[string]string{
		"etc/containerd.toml":      containerdConfig,
		"etc/kubelet.yaml":         kubeletConfig,
		"cni/net.d/00-multus.conf": multusConfig,
	} {
		if err := n.render(filepath.Join(n.Dir, path), tmpl); err != nil {
			t.Fatalf("render %s: %v", path, err)
		}
	}
	n.installCNI(t)
	if err := sharedNetnsDir(); err != nil {
		t.Fatal(err)
	}
	n.start(t, "containerd", "containerd", "--config", filepath.Join(n.Dir, "etc", "containerd.toml"))
	n.WaitFor(t, "containerd", time.Minute, func() error { _, err := n.ctr("version"); return err })
	n.importImages(t, append([]string{buildPause(t)}, opts.Images...))
}

// installCNI puts Multus and the cluster network's plugins into
// containerd's bin dir.
func (n *Node) installCNI(t testing.TB) {
	t.Helper()
	dir := filepath.Join(n.Dir, "cni", "bin")
	srcs := map[string]string{"multus": filepath.Join(n.bin, "multus")}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		srcs[p] = binaries.Path(t, p)
	}
	for name, src := range srcs {
		if err := os.Symlink(src, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}
