package security_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/spdksim"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// The whole of host a run with nothing but its own credentials, on etcd
// with auth on and client-certificate TLS: the host agent
// (uspace-host-a, by flags), a CNI ADD and DEL through libcni into a
// network namespace (uspace-host-a, in the network config), a volume
// create and remove through the Docker plugin socket (uspace-host-a, by
// flags), and the container agent converging the container side
// (uspace-containers-a, by the USPACE_ETCD_* environment). Host ab's keys
// stay untouched; every log line, CNI result and error is scanned for
// secrets.
func TestHostWithOwnCredentialsOnly(t *testing.T) {
	sc := newSecretScan(t)
	e := startSecureEtcd(t, sc)
	e.enableAuth()
	hostID := e.addIdentity(rbac.HostRole(hostA))
	ctrID := e.addIdentity(rbac.ContainersRole(hostA))
	e.addIdentity(rbac.HostRole(hostB))
	seeded := seed(t, e,
		schema.InterfaceKey(hostB, "c1", "net1"), schema.VolumeKey(hostB, "volume0"),
		schema.StatusKey(schema.Key{Kind: schema.KindVolumeKey, Host: hostB, Volume: "volume0"}))
	he := &harness.Etcd{Endpoints: e.Endpoints, Store: e.Root}
	ctx := context.Background()

	// Credentials as flags, the way a systemd unit passes them.
	credFlags := func(id identity) []string {
		return []string{"--etcd-endpoints", strings.Join(e.Endpoints, ","), "--etcd-cacert", e.CA,
			"--etcd-cert", e.AnonCert, "--etcd-key", e.AnonKey,
			"--etcd-user", id.Name, "--etcd-password-file", id.PasswordFile}
	}
	h := startHostAgent(t, sc, e, hostA, credFlags(hostID))

	t.Run("CNI ADD and DEL", func(t *testing.T) {
		if _, err := exec.LookPath("ip"); err != nil {
			t.Skip("no ip command for network namespaces")
		}
		conf := filepath.Join(t.TempDir(), "uspace.conf")
		if err := os.WriteFile(conf, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("USPACE_CONFIG", conf) // not this machine's /etc/uspace/uspace.conf
		t.Setenv("USPACE_HOST", "")
		for _, v := range []string{store.EnvEndpoints, store.EnvCACert, store.EnvCert, store.EnvKey, store.EnvUser, store.EnvPasswordFile, store.EnvPassword} {
			t.Setenv(v, "") // the network config alone carries the credentials
		}
		binDir := t.TempDir()
		for _, p := range []string{"userspace", "host-local"} {
			if err := os.Symlink(binaries.Path(t, p), filepath.Join(binDir, p)); err != nil {
				t.Fatal(err)
			}
		}
		stderr := &lockedBuf{}
		sc.source("CNI plugin stderr", stderr.String)
		cni := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: stderr}})
		logFile := filepath.Join(t.TempDir(), "plugin.log")
		sc.source("CNI plugin log", func() string { b, _ := os.ReadFile(logFile); return string(b) })
		netconf := map[string]any{
			"cniVersion": "1.0.0", "type": "userspace", "name": "memif-network",
			"logFile": logFile, "logLevel": "debug",
			"host": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "bridge",
				"memif": map[string]any{"role": "master", "mode": "ethernet"}, "bridge": map[string]any{"bridgeName": "4"}},
			"container": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "interface",
				"memif": map[string]any{"role": "slave", "mode": "ethernet"}},
			"ipam":      map[string]any{"type": "host-local", "subnet": "10.56.217.0/24", "dataDir": t.TempDir()},
			"sharedDir": h.SharedDir,
			"uspace": map[string]any{
				"host": hostA, "addTimeout": "15s",
				"etcd": map[string]any{"endpoints": e.Endpoints, "caCert": e.CA, "cert": e.AnonCert, "key": e.AnonKey,
					"username": hostID.Name, "passwordFile": hostID.PasswordFile},
			},
		}
		b, _ := json.Marshal(netconf)
		// A single-plugin .conf, as the upstream examples are, loaded the
		// way runtimes load it.
		confDir := t.TempDir()
		if err := os.WriteFile(filepath.Join(confDir, "90-userspace.conf"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		confList, err := libcni.LoadNetworkConf(confDir, "memif-network")
		if err != nil {
			t.Fatal(err)
		}
		ns := newNetns(t)
		const id = "ctr-secure-1"
		rt := &libcni.RuntimeConf{ContainerID: id, NetNS: ns, IfName: "net1",
			Args: [][2]string{{"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "pod-secure"}, {"IgnoreUnknown", "true"}}}
		res, err := cni.AddNetworkList(ctx, confList, rt)
		if err != nil {
			sc.addErr(err)
			t.Fatalf("CNI ADD with host a's credentials: %v", err)
		}
		sc.add("CNI ADD result", fmt.Sprint(res))
		if out, _ := json.Marshal(res); len(out) > 0 {
			sc.add("CNI ADD result JSON", string(out))
		}
		ifKey := schema.Key{Kind: schema.KindInterfaceKey, Host: hostA, Container: id, Interface: "net1"}
		harness.WaitStatus[schema.InterfaceStatus](t, he, schema.StatusKey(ifKey), 0, harness.Ready[schema.InterfaceStatus])
		if snap := h.VPP.Snapshot(); len(snap.Memifs) != 1 {
			t.Errorf("host VPP memifs: %+v", snap.Memifs)
		}

		// The container agent, as uspace-containers-a from its environment.
		ciStatus := schema.StatusKey(schema.Key{Kind: schema.KindContainerInterfaceKey, Host: hostA, Container: id, Interface: "net1"})
		ctrEnv := []string{
			store.EnvEndpoints + "=" + strings.Join(e.Endpoints, ","), store.EnvCACert + "=" + e.CA,
			store.EnvCert + "=" + e.AnonCert, store.EnvKey + "=" + e.AnonKey,
			store.EnvUser + "=" + ctrID.Name, store.EnvPasswordFile + "=" + ctrID.PasswordFile,
		}
		c := he.StartContainer(t, hostA, h.SharedDir, []string{"--container-id", id}, ctrEnv...)
		sc.source("container agent", c.Agent.Output)
		wctx, cancel := context.WithTimeout(ctx, harness.WaitTimeout)
		defer cancel()
		exited := c.Agent.Exited()
		go func() {
			select {
			case <-exited:
				cancel()
			case <-wctx.Done():
			}
		}()
		_, err = e.Root.WaitFor(wctx, ciStatus, 0, func(kv *store.KV) (bool, error) {
			if kv == nil {
				return false, nil
			}
			st, err := schema.DecodeAs[schema.InterfaceStatus](kv.Value)
			return err == nil && st.Ready, err
		})
		select {
		case <-exited:
			err = fmt.Errorf("container agent exited:\n%s", c.Agent.Output())
		default:
		}
		if err != nil {
			t.Fatalf("container agent with container credentials: %v", err)
		}
		if snap := c.VPP.Snapshot(); len(snap.Memifs) != 1 || snap.Memifs[0].Role != "slave" {
			t.Errorf("container VPP memifs: %+v", snap.Memifs)
		}

		if err := cni.DelNetworkList(ctx, confList, rt); err != nil {
			sc.addErr(err)
			t.Fatalf("CNI DEL with host a's credentials: %v", err)
		}
		he.WaitGone(t, schema.StatusKey(ifKey))
		if snap := h.VPP.Snapshot(); len(snap.Memifs) != 0 {
			t.Errorf("host VPP memifs after DEL: %+v", snap.Memifs)
		}
		he.WaitGone(t, ciStatus)
		if snap := c.VPP.Snapshot(); len(snap.Memifs) != 0 {
			t.Errorf("container VPP memifs after DEL: %+v", snap.Memifs)
		}
		if err := c.Agent.Stop(10 * time.Second); err != nil {
			t.Errorf("container agent: %v", err)
		}
	})

	t.Run("volume create and remove", func(t *testing.T) {
		pluginDir := harness.ShortTempDir(t)
		d := startVolumeDriver(t, sc, pluginDir, h, credFlags(hostID))
		d.call(t, "/VolumeDriver.Create", map[string]any{"Name": "volume0", "Opts": map[string]string{"device": "vhostblk0", "type": "blk", "size": "64MiB"}})
		vKey := schema.Key{Kind: schema.KindVolumeKey, Host: hostA, Volume: "volume0"}
		if kv, err := e.Root.Get(ctx, vKey.String()); err != nil || kv == nil {
			t.Fatalf("volume intent: %v %v", kv, err)
		}
		d.call(t, "/VolumeDriver.Mount", map[string]any{"Name": "volume0", "ID": "m1"})
		if _, err := os.Stat(filepath.Join(h.VolumeRoot, "block", "devices", "vhostblk0")); err != nil {
			t.Errorf("device node: %v", err)
		}
		d.call(t, "/VolumeDriver.Unmount", map[string]any{"Name": "volume0", "ID": "m1"})
		d.call(t, "/VolumeDriver.Remove", map[string]any{"Name": "volume0"})
		he.WaitGone(t, vKey.String())
		he.WaitGone(t, schema.StatusKey(vKey))
		if snap := h.SPDK.Snapshot(); len(snap.Controllers) != 0 {
			t.Errorf("SPDK controllers after remove: %+v", snap.Controllers)
		}
	})

	untouched(t, e, seeded)
	if err := h.Agent.Stop(10 * time.Second); err != nil {
		t.Errorf("host agent: %v", err)
	}
}

// simHost is a host's simulators and its host agent started with the
// given etcd flags.
type simHost struct {
	SharedDir, VolumeRoot string
	VPP                   *vppsim.Sim
	SPDK                  *spdksim.Sim
	Agent                 *harness.Proc
}

func startHostAgent(t *testing.T, sc *secretScan, e *secureEtcd, name string, etcdFlags []string) *simHost {
	t.Helper()
	dir := harness.ShortTempDir(t)
	h := &simHost{SharedDir: filepath.Join(dir, "shared"), VolumeRoot: filepath.Join(dir, "vhost")}
	vppSocket, spdkSocket := filepath.Join(dir, "vpp", "api.sock"), filepath.Join(dir, "spdk.sock")
	var err error
	if h.VPP, err = vppsim.Start(vppsim.Options{Socket: vppSocket, RuntimeDir: filepath.Join(dir, "vpp")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.VPP.Close() })
	sockets := filepath.Join(h.VolumeRoot, "block", "sockets")
	if err := os.MkdirAll(sockets, 0o755); err != nil {
		t.Fatal(err)
	}
	if h.SPDK, err = spdksim.Start(spdksim.Options{RPCSocket: spdkSocket, VhostDir: sockets}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.SPDK.Close() })
	args := append([]string{"host", "--host", name,
		"--vpp-socket", vppSocket, "--spdk-socket", spdkSocket,
		"--shared-dir", h.SharedDir, "--volume-root", h.VolumeRoot,
		"--metrics-addr", harness.FreeAddr(t), "--lease-ttl", "5s", "--state-dir", filepath.Join(dir, "state")}, etcdFlags...)
	h.Agent = harness.StartProc(t, "host agent "+name, binaries.Path(t, "uspace-agent"), args, noEtcdEnv()...)
	sc.source("host agent "+name, h.Agent.Output)

	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.Root.WaitFor(wctx, schema.AgentKey(name), 0, func(kv *store.KV) (bool, error) {
		select {
		case <-h.Agent.Exited():
			return false, fmt.Errorf("host agent exited:\n%s", h.Agent.Output())
		default:
		}
		return kv != nil, nil
	}); err != nil {
		t.Fatalf("host agent %s did not register with its own credentials: %v", name, err)
	}
	return h
}

// noEtcdEnv blanks the USPACE_ETCD_* variables a child would otherwise
// inherit, so its credentials come only from where the test says.
func noEtcdEnv() []string {
	var out []string
	for _, v := range []string{store.EnvEndpoints, store.EnvCACert, store.EnvCert, store.EnvKey, store.EnvUser, store.EnvPasswordFile, store.EnvPassword} {
		out = append(out, v+"=")
	}
	return out
}

type volumeDriver struct {
	socket string
	http   *http.Client
	proc   *harness.Proc
}

func startVolumeDriver(t *testing.T, sc *secretScan, pluginDir string, h *simHost, etcdFlags []string) *volumeDriver {
	t.Helper()
	d := &volumeDriver{socket: filepath.Join(pluginDir, "uspace-secure.sock")}
	d.http = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
		},
	}}
	args := append([]string{"--path", h.VolumeRoot, "--name", "uspace-secure", "--plugin-dir", pluginDir,
		"--host", hostA, "--timeout", "15s"}, etcdFlags...)
	d.proc = harness.StartProc(t, "uspace-volume", binaries.Path(t, "uspace-volume"), args, noEtcdEnv()...)
	sc.source("uspace-volume", d.proc.Output)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := d.post("/Plugin.Activate", struct{}{}); err == nil {
			return d
		}
		select {
		case <-d.proc.Exited():
			t.Fatalf("uspace-volume exited:\n%s", d.proc.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("uspace-volume not serving:\n%s", d.proc.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *volumeDriver) post(path string, req any) ([]byte, error) {
	body, _ := json.Marshal(req)
	r, err := d.http.Post("http://plugin"+path, "application/vnd.docker.plugins.v1.2+json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err == nil && r.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: status %d: %s", path, r.StatusCode, b)
	}
	return b, err
}

func (d *volumeDriver) call(t *testing.T, path string, req any) {
	t.Helper()
	if _, err := d.post(path, req); err != nil {
		t.Fatalf("%v\n%s", err, d.proc.Output())
	}
}

// newNetns makes a network namespace with `ip netns add` and returns its
// path.
func newNetns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("uspace-sec-%d", time.Now().UnixNano()%1e9)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", name).Run() })
	return "/var/run/netns/" + name
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
