package kube

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/spawn"
)

// Ports of the node's own etcd (Kubernetes' store, not uspace's).
const (
	kubeEtcdPort     = 12379
	kubeEtcdPeerPort = 12380
)

// cleanEnv keeps the test process's uspace settings (USPACE_CONFIG names
// an empty file in tests) away from the daemons, and so from the CNI
// plugin containerd runs: on the node it reads /etc/uspace/uspace.conf, as
// the DaemonSet's installer wrote it.
var cleanEnv = []string{"USPACE_CONFIG=", "USPACE_HOST=", "USPACE_ETCD_ENDPOINTS=", "USPACE_ETCD_CACERT=",
	"USPACE_ETCD_CERT=", "USPACE_ETCD_KEY=", "USPACE_ETCD_USER=", "USPACE_ETCD_PASSWORD_FILE=", "USPACE_ETCD_PASSWORD="}

// start runs one daemon of the node; a binary name without a slash is one
// of the unpacked Kubernetes binaries or a command on PATH.
func (n *Node) start(t testing.TB, name, bin string, args ...string) {
	t.Helper()
	if !strings.Contains(bin, "/") {
		if p := filepath.Join(n.bin, bin); fileExists(p) {
			bin = p
		}
	}
	p := n.procs[name]
	if p == nil {
		p = &spawn.Proc{Name: name, Args: append([]string{bin}, args...), Env: cleanEnv}
		n.procs[name] = p
		n.order = append(n.order, name)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// WaitFor polls ready (a readiness probe, or state in etcd, VPP or the
// apiserver that has no single event to wait on) until it succeeds or
// timeout passes, failing early when a daemon of the node exited.
func (n *Node) WaitFor(t testing.TB, what string, timeout time.Duration, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return
		}
		for name, p := range n.procs {
			select {
			case <-p.Exited():
				t.Fatalf("%s exited while waiting for %s: %v\n%s", name, what, err, tail(p.Output(), 40))
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func (n *Node) containerdSocket() string {
	return filepath.Join(n.Dir, "run", "containerd", "containerd.sock")
}

// ctr runs containerd's ctr on the node's containerd, k8s.io namespace.
func (n *Node) ctr(args ...string) (string, error) {
	out, err := exec.Command("ctr", append([]string{"-a", n.containerdSocket(), "-n", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %v: %w: %s", args, err, out)
	}
	return string(out), nil
}

// Crictl runs crictl against the node's containerd and returns what it
// printed on stdout.
func (n *Node) Crictl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(n.bin, "crictl"),
		append([]string{"-r", "unix://" + n.containerdSocket(), "-i", "unix://" + n.containerdSocket(), "--timeout", "60s"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("crictl %v: %w: %s", args, err, stderr.String())
	}
	return string(out), nil
}

// importImages copies Docker images into the node's containerd.
func (n *Node) importImages(t testing.TB, images []string) {
	t.Helper()
	save := exec.Command("docker", append([]string{"save"}, images...)...)
	imp := exec.Command("ctr", "-a", n.containerdSocket(), "-n", "k8s.io", "images", "import", "-")
	pipe, err := save.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	var saveErr strings.Builder
	save.Stderr = &saveErr
	if err := save.Start(); err != nil {
		t.Fatalf("docker save: %v", err)
	}
	out, err := imp.CombinedOutput()
	if werr := save.Wait(); werr != nil {
		t.Fatalf("docker save %v: %v: %s", images, werr, saveErr.String())
	}
	if err != nil {
		t.Fatalf("ctr images import %v: %v: %s", images, err, out)
	}
}

// buildPause builds the sandbox image: a static C program that sleeps,
// reaps orphans and exits on SIGTERM (testdata/pause), FROM scratch.
func buildPause(t testing.TB) string {
	t.Helper()
	return buildTestImage(t, "pause", PauseImage, "gcc", "-Os", "-static", "-s", "-o", "{out}", "{src}/pause.c")
}

// ImportTestImage builds the static Go program of testdata/<name> into an
// image FROM scratch (its Dockerfile beside it), imports it into the
// node's containerd and returns its name.
func (n *Node) ImportTestImage(t testing.TB, name string) string {
	t.Helper()
	tag := "uspace-test.local/" + name + ":1"
	buildTestImage(t, name, tag, "go", "build", "-trimpath", "-o", "{out}", "./integration/kube/testdata/"+name)
	n.importImages(t, []string{tag})
	return tag
}

// buildTestImage compiles testdata/<name> with build ({out}: the binary
// in the build context, {src}: the source directory) and builds tag from
// the context and the Dockerfile beside the source.
func buildTestImage(t testing.TB, name, tag string, build ...string) string {
	t.Helper()
	ctx := t.TempDir()
	src := filepath.Join(moduleRoot(), "integration", "kube", "testdata", name)
	for i, a := range build {
		build[i] = strings.NewReplacer("{out}", filepath.Join(ctx, name), "{src}", src).Replace(a)
	}
	compile := exec.Command(build[0], build[1:]...)
	compile.Dir = moduleRoot()
	compile.Env = append(os.Environ(), "CGO_ENABLED=0")
	for _, c := range []*exec.Cmd{compile, exec.Command("cp", filepath.Join(src, "Dockerfile"), ctx),
		exec.Command("docker", "build", "--quiet", "--tag", tag, ctx)} {
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("build image %s: %v: %v: %s", tag, c.Args, err, out)
		}
	}
	return tag
}

// startControlPlane starts etcd, the apiserver, controller-manager,
// scheduler and kubelet, installs Multus' CRD and role, and waits for the
// node to be Ready and the default ServiceAccount to exist (pods cannot be
// created before).
func (n *Node) startControlPlane(t testing.TB) {
	t.Helper()
	p := n.pki.path
	kc := func(name string) string { return filepath.Join(n.Dir, "kubeconfig", name+".kubeconfig") }
	etcdURL := fmt.Sprintf("http://%s:%d", n.IP, kubeEtcdPort)
	peerURL := fmt.Sprintf("http://%s:%d", n.IP, kubeEtcdPeerPort)
	n.start(t, "etcd", binaries.Path(t, "etcd"), "--name", "uskube", "--data-dir", filepath.Join(n.Dir, "var", "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL, "--initial-cluster", "uskube="+peerURL,
		"--unsafe-no-fsync", "--log-level", "warn")
	n.start(t, "kube-apiserver", "kube-apiserver", "--etcd-servers="+etcdURL,
		"--bind-address="+n.IP, fmt.Sprintf("--secure-port=%d", apiserverPort), "--advertise-address="+n.IP,
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"), "--client-ca-file="+p("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p("sa.pub"), "--service-account-signing-key-file="+p("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--kubelet-client-certificate="+p("apiserver-kubelet-client.crt"), "--kubelet-client-key="+p("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP,Hostname", "--allow-privileged=true", "--profiling=false", "--v=0")
	n.WaitFor(t, "kube-apiserver /readyz", 3*time.Minute, func() error { _, err := n.KubectlErr("get", "--raw", "/readyz"); return err })
	n.start(t, "kube-controller-manager", "kube-controller-manager", "--kubeconfig="+kc("controller-manager"),
		"--authentication-kubeconfig="+kc("controller-manager"), "--authorization-kubeconfig="+kc("controller-manager"),
		"--bind-address="+n.IP, "--service-account-private-key-file="+p("sa.key"), "--root-ca-file="+p("ca.crt"),
		"--cluster-signing-cert-file="+p("ca.crt"), "--cluster-signing-key-file="+p("ca.key"),
		"--use-service-account-credentials=true", "--leader-elect=false", "--profiling=false", "--v=0",
		"--flex-volume-plugin-dir="+filepath.Join(n.Dir, "var", "kubelet-plugins"))
	n.start(t, "kube-scheduler", "kube-scheduler", "--kubeconfig="+kc("scheduler"),
		"--authentication-kubeconfig="+kc("scheduler"), "--authorization-kubeconfig="+kc("scheduler"),
		"--bind-address="+n.IP, "--leader-elect=false", "--profiling=false", "--v=0")
	n.startKubelet(t)
	n.Apply(t, readTestdata(t, "multus.yaml"))
	n.WaitFor(t, "the NetworkAttachmentDefinition CRD", time.Minute, func() error {
		_, err := n.KubectlErr("wait", "--for=condition=Established", "--timeout=2s", "crd/network-attachment-definitions.k8s.cni.cncf.io")
		return err
	})
	n.WaitFor(t, "node Ready", 3*time.Minute, func() error {
		_, err := n.KubectlErr("wait", "--for=condition=Ready", "--timeout=2s", "node/"+n.Name)
		return err
	})
	n.WaitFor(t, "the default ServiceAccount", time.Minute, func() error { _, err := n.KubectlErr("get", "sa", "default"); return err })
}

func (n *Node) startKubelet(t testing.TB) {
	t.Helper()
	n.start(t, "kubelet", "kubelet", "--config="+filepath.Join(n.Dir, "etc", "kubelet.yaml"),
		"--kubeconfig="+filepath.Join(n.Dir, "kubeconfig", "kubelet.kubeconfig"),
		"--root-dir="+filepath.Join(n.Dir, "var", "kubelet"), "--cert-dir="+filepath.Join(n.Dir, "var", "kubelet", "pki"),
		"--node-ip="+n.IP, "--hostname-override="+n.Name, "--v=0")
}

// RestartKubelet stops kubelet (SIGTERM, as systemd would) and starts it
// again; running pods are left alone.
func (n *Node) RestartKubelet(t testing.TB) {
	t.Helper()
	n.restart(t, "kubelet", n.startKubelet)
	n.WaitFor(t, "kubelet healthz after its restart", time.Minute, func() error {
		_, err := exec.Command("curl", "-sf", fmt.Sprintf("http://%s:10248/healthz", n.IP)).CombinedOutput()
		return err
	})
}

// RestartContainerd stops containerd and starts it again: the shims and
// the pods they run stay.
func (n *Node) RestartContainerd(t testing.TB) {
	t.Helper()
	n.restart(t, "containerd", func(t testing.TB) {
		n.start(t, "containerd", "containerd", "--config", filepath.Join(n.Dir, "etc", "containerd.toml"))
	})
	n.WaitFor(t, "containerd after its restart", time.Minute, func() error { _, err := n.Crictl("pods", "-q"); return err })
}

func (n *Node) restart(t testing.TB, name string, start func(testing.TB)) {
	t.Helper()
	if err := n.procs[name].Stop(30 * time.Second); err != nil {
		t.Logf("%s stopped: %v", name, err)
	}
	start(t)
}

// stop tears the node down: pods first (their CNI DELs need containerd
// and Multus the apiserver), then the daemons, then what is left on the
// machine. Failures are errors of the test, after everything was tried.
func (n *Node) stop(t testing.TB) {
	t.Helper()
	for _, name := range []string{"kubelet", "kube-scheduler", "kube-controller-manager"} {
		n.stopProc(name)
	}
	if p := n.procs["containerd"]; p != nil && !exited(p) {
		if out, err := n.Crictl("rmp", "-fa"); err != nil {
			t.Logf("remove the pods: %v: %s", err, out)
		}
	}
	for _, name := range []string{"kube-apiserver", "etcd", "containerd"} {
		n.stopProc(name)
	}
	n.saveLogs(t)
	if err := undoHost(n.Dir, n.host); err != nil {
		t.Errorf("undo the node's changes to the machine: %v", err)
	}
	if err := os.RemoveAll(n.Dir); err != nil {
		t.Errorf("remove %s: %v", n.Dir, err)
	}
}

func (n *Node) stopProc(name string) {
	if p := n.procs[name]; p != nil {
		_ = p.Stop(30 * time.Second)
	}
}

func exited(p *spawn.Proc) bool {
	select {
	case <-p.Exited():
		return true
	default:
		return false
	}
}

// LogDir is where a node leaves its daemons' logs (and uspace's pods'),
// kept after the node until the next one starts.
func LogDir() string { return filepath.Join(os.TempDir(), "uspace-kube-logs") }

// saveLogs keeps the daemons' output (and Multus' log) outside the node's
// directory, which goes; on failure it points there.
func (n *Node) saveLogs(t testing.TB) {
	dir := LogDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	for name, p := range n.procs {
		_ = os.WriteFile(filepath.Join(dir, name+".log"), []byte(p.Output()), 0o644)
	}
	if b, err := os.ReadFile(filepath.Join(n.Dir, "log", "multus.log")); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "multus.log"), b, 0o644)
	}
	if t.Failed() {
		for _, name := range slices.Sorted(maps.Keys(n.procs)) {
			t.Logf("--- last lines of %s ---\n%s", name, tail(n.procs[name].Output(), 15))
		}
		t.Logf("the node's logs are in %s", dir)
	}
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(), "integration", "kube", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
