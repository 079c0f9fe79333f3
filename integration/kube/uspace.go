package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/integration/spawn"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Where deployments/kubernetes/ expects the node's dataplanes, and the
// example endpoints it documents as the user's to set.
const (
	VPPSocket        = "/run/vpp/api.sock"
	SPDKSocket       = "/var/tmp/spdk.sock"
	VhostUserRoot    = "/var/run/kata-containers/vhost-user"
	SharedDir        = "/var/run/vpp/cni/shared"
	exampleEndpoints = "https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379"
	uspaceEtcdPort   = 2379
	uspaceEtcdPeer   = 2380
	// Images are build.sh's defaults, as the manifests name them; the VPP
	// pods' VPP is the one `make dataplanes` installed (images/vpp).
	hostAgentImage    = "uspace/host-agent:latest"
	cniInstallerImage = "uspace/cni-installer:latest"
	vppContainerImage = "uspace/vpp-container:latest"
	vppImage          = "uspace/vpp:latest"
)

// Uspace is uspace installed on a node from deployments/kubernetes/: its
// own etcd with TLS, client certificates and roles (deployments/etcd/),
// the real VPP 25.02 on the node where the manifests expect it (SPDK 24.09
// on demand), the images build.sh makes, the Secrets and the manifests.
type Uspace struct {
	*Node
	// EtcdURL is uspace's etcd; Store the test's client to it as
	// uspace-admin.
	EtcdURL string
	Store   *store.Client
	// VPP is the node's VPP; Proxy sits at VPPSocket in front of it and
	// counts the host agent's binary-API messages.
	VPP   *realdp.VPP
	Proxy *realdp.APIProxy

	certs string
	etcd  *spawn.Proc
}

// StartUspace builds the images, brings a node up and installs uspace on
// it; the test's cleanup removes it all. It skips where a node cannot run.
func StartUspace(t testing.TB) *Uspace {
	t.Helper()
	Need(t)
	step := stepTimer(t)
	buildImages(t)
	step("images built")
	u := &Uspace{Node: Start(t, Options{Images: []string{hostAgentImage, cniInstallerImage, vppContainerImage}})}
	step("node up")
	u.startEtcd(t)
	step("uspace's etcd up with its roles")
	u.VPP = realdp.StartVPP(t, realdp.VPPOptions{Name: "uskube-host"})
	if err := os.MkdirAll(filepath.Dir(VPPSocket), 0o755); err != nil {
		t.Fatal(err)
	}
	claimSocket(t, VPPSocket)
	u.Proxy = realdp.ListenAPIProxy(t, VPPSocket, u.VPP.APISocket)
	step("host VPP up")
	u.install(t)
	step("uspace installed and its host agent registered")
	t.Cleanup(func() { u.uninstall(t) })
	return u
}

// stepTimer logs how long each step of a start-up took.
func stepTimer(t testing.TB) func(string) {
	last := time.Now()
	return func(what string) {
		t.Logf("%s in %s", what, time.Since(last).Round(100*time.Millisecond))
		last = time.Now()
	}
}

// StartSPDK starts the node's SPDK where the manifests expect its socket,
// its vhost-user sockets in the vhost-user root's block/sockets/; the
// test's cleanup stops it. Only the volume flows start it: spdk_tgt's
// reactor polls a whole core of the node's two.
func (u *Uspace) StartSPDK(t testing.TB) *realdp.SPDK {
	t.Helper()
	claimSocket(t, SPDKSocket)
	return realdp.StartSPDK(t, realdp.SPDKOptions{VhostDir: filepath.Join(VhostUserRoot, "block", "sockets"), RPCSocket: SPDKSocket})
}

// claimSocket makes sure the node may use a fixed socket path of the
// machine: one that answers belongs to a dataplane of the machine's own,
// which the test must not replace; one that does not is a leftover of a
// killed run and goes.
func claimSocket(t testing.TB, path string) {
	t.Helper()
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s answers: a dataplane of this machine serves it, and the node needs it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

// buildImages runs deployments/images/build.sh for the images the
// manifests name, vpp-container on the VPP image of this machine's VPP.
func buildImages(t testing.TB) {
	t.Helper()
	cmd := exec.Command(filepath.Join(moduleRoot(), "deployments", "images", "build.sh"), "host-agent", "cni-installer", "vpp", "vpp-container")
	cmd.Env = append(os.Environ(), "BIN="+binaries.Dir(t, "uspace-agent", "userspace"), "PREFIX=uspace/", "TAG=latest", "VPP_IMAGE="+vppImage)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deployments/images/build.sh: %v\n%s", err, out)
	}
}

// startEtcd runs uspace's etcd as deployments/etcd/README.md says:
// make-certs.sh, TLS with client certificates, JWT tokens, then
// `uspacectl auth init` and `auth add-host` for the node.
func (u *Uspace) startEtcd(t testing.TB) {
	t.Helper()
	u.certs = filepath.Join(u.Dir, "uspace-pki")
	u.EtcdURL = fmt.Sprintf("https://%s:%d", u.IP, uspaceEtcdPort)
	mk := exec.Command(filepath.Join(moduleRoot(), "deployments", "etcd", "make-certs.sh"), u.certs,
		"root", "uspace-admin", "uspace-host-"+u.Name, "uspace-containers-"+u.Name)
	mk.Env = append(os.Environ(), "SERVER_SANS=IP:"+u.IP)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make-certs.sh: %v\n%s", err, out)
	}
	c := func(f string) string { return filepath.Join(u.certs, f) }
	peer := fmt.Sprintf("http://%s:%d", u.IP, uspaceEtcdPeer)
	u.etcd = &spawn.Proc{Name: "uspace etcd", Args: []string{binaries.Path(t, "etcd"), "--name", "uspace",
		"--data-dir", filepath.Join(u.Dir, "var", "uspace-etcd"),
		"--listen-client-urls", u.EtcdURL, "--advertise-client-urls", u.EtcdURL,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "uspace=" + peer,
		"--client-cert-auth", "--trusted-ca-file", c("ca.pem"), "--cert-file", c("server.pem"), "--key-file", c("server-key.pem"),
		"--auth-token", "jwt,pub-key=" + c("jwt-pub.pem") + ",priv-key=" + c("jwt-key.pem") + ",sign-method=RS256,ttl=10m",
		"--log-level", "warn"}}
	if err := u.etcd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		u.etcd.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("--- output of uspace's etcd ---\n%s", tail(u.etcd.Output(), 30))
		}
	})
	as := func(user string) []string {
		return []string{"--etcd-endpoints", u.EtcdURL, "--etcd-cacert", c("ca.pem"), "--etcd-cert", c(user + ".pem"), "--etcd-key", c(user + "-key.pem")}
	}
	creds := filepath.Join(u.certs, "credentials")
	u.WaitFor(t, "uspace's etcd", time.Minute, func() error {
		return uspacectl(t, append(as("root"), "auth", "init", "--enable", "--root-cert-only", "--out", creds)...)
	})
	if err := uspacectl(t, append(as("root"), "auth", "add-host", u.Name, "--out", filepath.Join(creds, u.Name))...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Connect(ctx, store.Config{Endpoints: []string{u.EtcdURL}, CACert: c("ca.pem"),
		Cert: c("uspace-admin.pem"), Key: c("uspace-admin-key.pem"), DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("connect to uspace's etcd as uspace-admin: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	u.Store = st
}

func uspacectl(t testing.TB, args ...string) error {
	t.Helper()
	out, err := exec.Command(binaries.Path(t, "uspacectl"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("uspacectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// HostCredentials are the node's host identity (uspace-host-<node>) as
// make-certs.sh wrote it: CA, certificate, key.
func (u *Uspace) HostCredentials() (ca, cert, key string) {
	id := filepath.Join(u.certs, "uspace-host-"+u.Name)
	return filepath.Join(u.certs, "ca.pem"), id + ".pem", id + "-key.pem"
}

// Manifest is deployments/kubernetes/<name> with the etcd endpoints this
// node's etcd has: the one change its comments leave to the user.
func (u *Uspace) Manifest(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(), "deployments", "kubernetes", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), exampleEndpoints, u.EtcdURL)
}

// install applies deployments/kubernetes/ in the order its comments say:
// the namespace and the host agents' Secret (from make-certs.sh's files),
// the host agent DaemonSet with the CNI installer, the
// NetworkAttachmentDefinitions; then waits for the host agent to register
// in etcd. The pods need no Secret: their agents use the host agent's
// endpoints.
func (u *Uspace) install(t testing.TB) {
	t.Helper()
	c := func(f string) string { return "--from-file=" + filepath.Join(u.certs, f) }
	host := "uspace-host-" + u.Name
	u.Kubectl(t, "create", "namespace", "uspace-system")
	u.Kubectl(t, "-n", "uspace-system", "create", "secret", "generic", "uspace-etcd-hosts", c("ca.pem"), c(host+".pem"), c(host+"-key.pem"))
	u.Apply(t, u.Manifest(t, "host-agent.yaml"))
	u.Apply(t, u.Manifest(t, "network-attachments.yaml"))
	u.WaitHostAgent(t)
}

// WaitHostAgent waits for the DaemonSet's pod to be ready and the agent
// to hold its registration in etcd.
func (u *Uspace) WaitHostAgent(t testing.TB) {
	t.Helper()
	u.WaitFor(t, "the host agent DaemonSet", 3*time.Minute, func() error {
		_, err := u.KubectlErr("-n", "uspace-system", "rollout", "status", "ds/uspace-host-agent", "--timeout=5s")
		return err
	})
	u.WaitFor(t, "the host agent's registration", time.Minute, func() error {
		if len(u.Keys(t, schema.AgentKey(u.Name))) == 0 {
			return fmt.Errorf("no %s", schema.AgentKey(u.Name))
		}
		return nil
	})
}

// Keys lists the keys under prefix in uspace's etcd.
func (u *Uspace) Keys(t testing.TB, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := u.Store.Etcd().Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatalf("list %s: %v", prefix, err)
	}
	keys := make([]string, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		keys[i] = string(kv.Key)
	}
	return keys
}

// VPPPod is deployments/kubernetes/vpp-pod.yaml as a pod named name on
// network (its name and networks annotation are the user's to choose). On
// a network whose sockets are files (vhost-user) it also mounts the node's
// shared directory, as the manifest's comment says.
func (u *Uspace) VPPPod(t testing.TB, name, network string) string {
	t.Helper()
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(u.Manifest(t, "vpp-pod.yaml")), &pod); err != nil {
		t.Fatalf("vpp-pod.yaml: %v", err)
	}
	pod.Name = name
	pod.Annotations["k8s.v1.cni.cncf.io/networks"] = network
	if network == "vhost-network" {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "shared-dir",
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: SharedDir}}})
		ctr := &pod.Spec.Containers[0]
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: "shared-dir", MountPath: SharedDir})
	}
	b, err := json.Marshal(&pod)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// uninstall deletes the pods while the host agent still runs (their CNI
// DELs then need no timeout), then the DaemonSet.
func (u *Uspace) uninstall(t testing.TB) {
	t.Helper()
	u.saveLogs()
	if out, err := u.KubectlErr("delete", "pods", "--all", "-n", "default", "--timeout=2m"); err != nil {
		t.Logf("delete the pods: %v: %s", err, out)
	}
	if out, err := u.KubectlErr("delete", "namespace", "uspace-system", "--timeout=2m"); err != nil {
		t.Logf("delete uspace-system: %v: %s", err, out)
	}
}

// saveLogs keeps the host agent's and the VPP pods' logs beside the
// node's (saveLogs of the node says where).
func (u *Uspace) saveLogs() {
	dir := filepath.Join(LogDir(), "pods")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	for _, ns := range []string{"uspace-system", "default"} {
		names, err := u.KubectlErr("-n", ns, "get", "pods", "-o", "name")
		if err != nil {
			continue
		}
		for _, name := range strings.Fields(names) {
			out, _ := u.KubectlErr("-n", ns, "logs", name, "--all-containers")
			_ = os.WriteFile(filepath.Join(dir, ns+"_"+strings.TrimPrefix(name, "pod/")+".log"), []byte(out), 0o644)
		}
	}
}
