package deployments_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sys/unix"

	"github.com/uspace-io/uspace/cni"
	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/deployments/internal/helpcheck"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// dockerTimeout bounds one docker/compose command; the whole test stays
// near two minutes on an idle 2-core machine.
const dockerTimeout = 5 * time.Minute

// requireDocker skips the test when no Docker daemon answers.
func requireDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI in PATH: the image and compose checks need a Docker daemon")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("no Docker daemon reachable (docker info: %v: %s): the image and compose checks need one", err, bytes.TrimSpace(out))
	}
}

// composeCommand is `docker compose` (v2) or `docker-compose` (v1),
// whichever exists.
func composeCommand(t *testing.T) []string {
	t.Helper()
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	t.Skip("neither `docker compose` nor `docker-compose` is installed")
	return nil
}

// sh runs a command with env added to the test's, returning its stdout; a
// failure is fatal and shows both streams.
func sh(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	out, err := shErr(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

func shErr(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// cluster is one compose project of deployments/compose.
type cluster struct {
	t       *testing.T
	compose []string
	env     []string
	project string
	data    string // USPACE_COMPOSE_DATA: the bind mounts
	file    string
}

func (c *cluster) run(args ...string) string {
	c.t.Helper()
	full := append(append(slices.Clone(c.compose[1:]), "-p", c.project, "-f", c.file), args...)
	return sh(c.t, c.env, c.compose[0], full...)
}

// container is the Docker ID of a service's container.
func (c *cluster) container(service string) string {
	c.t.Helper()
	id := strings.TrimSpace(c.run("ps", "-q", service))
	if id == "" {
		c.t.Fatalf("service %s has no container", service)
	}
	return id
}

// down removes the project; run twice it is a no-op.
func (c *cluster) down() error {
	args := append(append(slices.Clone(c.compose[1:]), "-p", c.project, "-f", c.file), "down", "-v", "--remove-orphans", "-t", "5")
	_, err := shErr(c.env, c.compose[0], args...)
	return err
}

func randomID(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// images are the ones build.sh makes, in its order.
var images = []string{"etcd", "host-agent", "cni-installer", "vppsim", "vpp-container", "host-sim"}

// buildImages runs deployments/images/build.sh on the binaries of this
// tree, tagging every image <prefix><name>:<tag>; the images go when the
// test ends.
func buildImages(t *testing.T, prefix, tag string) {
	t.Helper()
	bin := t.TempDir()
	for b, pkg := range map[string]string{
		"etcd": "go.etcd.io/etcd/server/v3", "etcdctl": "go.etcd.io/etcd/etcdctl/v3",
		"uspace-agent": "./cmd/uspace-agent", "userspace": "./cmd/userspace",
		"uspace-vppsim": "./cmd/uspace-vppsim", "uspace-spdksim": "./cmd/uspace-spdksim",
	} {
		if err := os.Symlink(helpcheck.Static(t, binaries.Path(t, b), pkg), filepath.Join(bin, b)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, img := range images {
			_, _ = shErr(nil, "docker", "rmi", "--force", prefix+img+":"+tag)
		}
	})
	sh(t, []string{"BIN=" + bin, "PREFIX=" + prefix, "TAG=" + tag},
		filepath.Join(helpcheck.Root(), "deployments", "images", "build.sh"))
	for _, img := range images {
		sh(t, nil, "docker", "image", "inspect", "--format", "{{.Id}}", prefix+img+":"+tag)
	}
}

// recorder keeps what a list-watch delivered after its first sync.
type recorder struct {
	mu     sync.Mutex
	events []store.Event
}

func (r *recorder) handle(ev store.Event) error {
	if ev.Type == store.Put || ev.Type == store.Delete {
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	}
	return nil
}

// seen reports whether an event of type typ for key arrived at a revision
// after rev.
func (r *recorder) seen(typ store.EventType, key string, after int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if ev.Type == typ && ev.KV.Key == key && ev.Revision > after {
			return true
		}
	}
	return false
}

func statusKey(t *testing.T, intentKey string) string {
	k, err := schema.ParseKey(intentKey)
	if err != nil {
		t.Fatal(err)
	}
	return schema.StatusKey(k)
}

// uspacectlRow is the JSON form of one `uspacectl get` row.
type uspacectlRow struct {
	Key    string `json:"key"`
	Host   string `json:"host"`
	Name   string `json:"name"`
	Agrees bool   `json:"agrees"`
	State  string `json:"state"`
}

func uspacectl(t *testing.T, endpoints []string, what string) map[string]uspacectlRow {
	t.Helper()
	out := sh(t, nil, binaries.Path(t, "uspacectl"), "--etcd-endpoints", strings.Join(endpoints, ","), "get", what, "-o", "json")
	var rows []uspacectlRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("uspacectl get %s -o json: %v\n%s", what, err, out)
	}
	byName := map[string]uspacectlRow{}
	for _, r := range rows {
		byName[r.Host+"/"+r.Name] = r
	}
	return byName
}

// TestComposeCluster is the multi-host deployment end to end: the images
// built from this tree, the compose cluster (3 etcd members, two hosts each
// running the host agent with vppsim and spdksim, an application container
// with its own VPP and the container agent), the CNI installer image
// installing the plugin, CNI ADDs through libcni into a namespace on each
// host, one etcd member stopped while writes and watches go on, the state
// read back with uspacectl, and nothing left behind.
func TestComposeCluster(t *testing.T) {
	requireDocker(t)
	compose := composeCommand(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces for the CNI ADDs, and the files the containers write as root")
	}
	start := time.Now()
	id := randomID(t)
	prefix, tag := "uspace-deploytest/", id

	buildImages(t, prefix, tag)
	t.Logf("images built in %v", time.Since(start).Round(time.Second))

	c := &cluster{
		t:       t,
		compose: compose,
		project: "uspacedeploy" + id,
		data:    t.TempDir(),
		file:    filepath.Join(helpcheck.Root(), "deployments", "compose", "docker-compose.yml"),
	}
	c.env = []string{
		"USPACE_IMAGE_PREFIX=" + prefix, "USPACE_IMAGE_TAG=" + tag, "USPACE_COMPOSE_DATA=" + c.data,
		// Free loopback ports, never fixed ones: other tests may run.
		"USPACE_ETCD1_PUBLISH=127.0.0.1:", "USPACE_ETCD2_PUBLISH=127.0.0.1:", "USPACE_ETCD3_PUBLISH=127.0.0.1:",
		"COMPOSE_HTTP_TIMEOUT=300",
	}
	downed := false
	t.Cleanup(func() {
		if !downed {
			if err := c.down(); err != nil {
				t.Errorf("compose down: %v", err)
			}
		}
	})
	c.run("up", "-d")
	t.Logf("cluster up after %v", time.Since(start).Round(time.Second))

	members := []string{"etcd1", "etcd2", "etcd3"}
	endpoint := map[string]string{} // member -> 127.0.0.1:port
	var endpoints []string
	for _, m := range members {
		ep := strings.TrimSpace(c.run("port", m, "2379"))
		if !strings.HasPrefix(ep, "127.0.0.1:") {
			t.Fatalf("etcd member %s is published on %q, want a loopback port", m, ep)
		}
		endpoint[m] = ep
		endpoints = append(endpoints, ep)
	}

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := store.Connect(cctx, store.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	ccancel()
	if err != nil {
		t.Fatalf("connect to the compose etcd %v: %v", endpoints, err)
	}
	t.Cleanup(func() { st.Close() })
	e := &harness.Etcd{Endpoints: endpoints, Store: st}

	// Both host agents register (they wait for etcd, VPP and SPDK first).
	for _, h := range []string{"host1", "host2"} {
		wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
		_, err := st.WaitFor(wctx, schema.AgentKey(h), 0, func(kv *store.KV) (bool, error) { return kv != nil, nil })
		wcancel()
		if err != nil {
			t.Fatalf("host agent %s did not register: %v\n%s", h, err, c.run("logs", "--tail", "40", h))
		}
	}

	// The CNI installer image installs the plugin and uspace.conf into a
	// host tree, as the DaemonSet's init container does on a node.
	hostRoot := t.TempDir()
	sh(t, nil, "docker", "run", "--rm", "--network", "none",
		"-v", hostRoot+":/host",
		"-e", "USPACE_ETCD_ENDPOINTS="+strings.Join(endpoints, ","), "-e", "USPACE_HOST=host1",
		prefix+"cni-installer:"+tag)
	cniBin := filepath.Join(hostRoot, "opt", "cni", "bin")
	installed, err := os.ReadFile(filepath.Join(cniBin, "userspace"))
	if err != nil {
		t.Fatalf("the installer did not install the plugin: %v", err)
	}
	if want, _ := os.ReadFile(helpcheck.Static(t, binaries.Path(t, "userspace"), "./cmd/userspace")); !bytes.Equal(installed, want) {
		t.Fatal("the installed plugin differs from the userspace binary built here")
	}
	confPath := filepath.Join(hostRoot, "etc", "uspace", "uspace.conf")
	checkInstalledConf(t, confPath, endpoints, "host1")
	checkInstallerCredentials(t, prefix+"cni-installer:"+tag)

	// The plugin runs here, the way a runtime runs it (libcni), with the
	// installed uspace.conf and host-local for IPAM.
	installHostLocal(t, cniBin)
	t.Setenv(cni.EnvConfig, confPath)
	t.Setenv(cni.EnvHost, "")
	cninet := libcni.NewCNIConfigWithCacheDir([]string{cniBin}, t.TempDir(), nil)
	ipamDir := t.TempDir()
	network := func(host string) *libcni.NetworkConfigList {
		return netconf(t, host, endpoints, ipamDir)
	}
	type attachment struct {
		host, container, netns string
		list                   *libcni.NetworkConfigList
	}
	add := func(a attachment) *types100.Result {
		t.Helper()
		rt := &libcni.RuntimeConf{ContainerID: a.container, NetNS: a.netns, IfName: "net1"}
		actx, acancel := context.WithTimeout(ctx, 60*time.Second)
		defer acancel()
		r, err := cninet.AddNetworkList(actx, a.list, rt)
		if err != nil {
			t.Fatalf("CNI ADD of %s on %s: %v", a.container, a.host, err)
		}
		res, err := types100.NewResultFromResult(r)
		if err != nil {
			t.Fatal(err)
		}
		var sandbox bool
		for _, i := range res.Interfaces {
			if i.Name == "net1" && i.Sandbox == a.netns {
				sandbox = true
			}
		}
		if !sandbox || len(res.IPs) != 1 || !strings.HasPrefix(res.IPs[0].Address.IP.String(), "10.56.217.") {
			t.Fatalf("CNI ADD of %s on %s: result %+v lacks net1 in %s with an address from the IPAM", a.container, a.host, res, a.netns)
		}
		return res
	}
	del := func(a attachment) {
		t.Helper()
		rt := &libcni.RuntimeConf{ContainerID: a.container, NetNS: a.netns, IfName: "net1"}
		dctx, dcancel := context.WithTimeout(ctx, 60*time.Second)
		defer dcancel()
		if err := cninet.DelNetworkList(dctx, a.list, rt); err != nil {
			t.Fatalf("CNI DEL of %s on %s: %v", a.container, a.host, err)
		}
	}
	newNS := func() string {
		n, err := testutils.NewNS()
		if err != nil {
			t.Fatalf("network namespace: %v", err)
		}
		t.Cleanup(func() { n.Close(); _ = testutils.UnmountNS(n) })
		return n.Path()
	}

	// host1: the application container, by its Docker ID and its netns,
	// as the seed's vpp-docker-run.sh did. Its agent finds itself.
	appID := c.container("app1")
	pid := strings.TrimSpace(sh(t, nil, "docker", "inspect", "--format", "{{.State.Pid}}", appID))
	app := attachment{host: "host1", container: appID, netns: "/proc/" + pid + "/ns/net", list: network("host1")}
	if _, err := ns.GetNS(app.netns); err != nil {
		t.Fatalf("app1's network namespace: %v", err)
	}
	add(app)
	// host2: a namespace made here.
	nsA := attachment{host: "host2", container: "deploy-" + id + "-a", netns: newNS(), list: network("host2")}
	add(nsA)

	// The host agents converged their own vppsim: the memif sockets exist
	// in each host's shared directory (a bind mount we can see), and the
	// container agent in app1 converged the container side.
	for _, a := range []attachment{app, nsA} {
		s := harness.WaitStatus[schema.InterfaceStatus](t, e, statusKey(t, schema.InterfaceKey(a.host, a.container, "net1")), 0, harness.Ready[schema.InterfaceStatus])
		onHost := filepath.Join(c.data, a.host, "shared", strings.TrimPrefix(s.SocketPath, cni.DefaultSharedDir+"/"))
		if fi, err := os.Stat(onHost); err != nil || fi.Mode().Type() != os.ModeSocket {
			t.Errorf("%s: memif socket %s (seen from outside as %s) is not there: %v", a.host, s.SocketPath, onHost, err)
		}
	}
	appStatus := statusKey(t, schema.ContainerInterfaceKey("host1", appID, "net1"))
	harness.WaitStatus[schema.InterfaceStatus](t, e, appStatus, 0, harness.Ready[schema.InterfaceStatus])
	// What an operator sees of it: the container side, desired and
	// observed, agreeing.
	if row, ok := uspacectl(t, endpoints, "containers")["host1/"+appID+"/net1"]; !ok || !row.Agrees || row.State != "ready" {
		t.Errorf("uspacectl get containers: app1's net1 = %+v (present %v), want ready and agreeing", row, ok)
	}

	// A vhost-user block volume on host1: spdksim's controller and the
	// block node 241:<minor> made by the agent in its container.
	volKey := schema.VolumeKey("host1", "volume0")
	vrev := e.Put(t, map[string]schema.Object{volKey: &schema.Volume{
		Host: "host1", Name: "volume0", Type: schema.VolumeBlk, Device: "vhostblk0",
		Root: "/var/run/kata-containers/vhost-user", Bdev: "Malloc-vhostblk0", Minor: 0,
		Malloc: &schema.MallocSpec{SizeBytes: 64 << 20, BlockSize: 4096},
	}})
	vs := harness.WaitStatus[schema.VolumeStatus](t, e, statusKey(t, volKey), vrev, harness.Ready[schema.VolumeStatus])
	node := filepath.Join(c.data, "host1", "vhost-user", strings.TrimPrefix(vs.DevicePath, "/var/run/kata-containers/vhost-user/"))
	var stt unix.Stat_t
	if err := unix.Stat(node, &stt); err != nil || stt.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(uint64(stt.Rdev)) != 241 {
		t.Errorf("volume0: %s is not a block node 241:* (%v, mode %o)", node, err, stt.Mode)
	}
	t.Logf("two hosts, one app container and a volume converged after %v", time.Since(start).Round(time.Second))

	// Stop one etcd member, the leader, while a watch runs.
	rec := &recorder{}
	wctx, wcancel := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	go func() { watchDone <- st.ListWatch(wctx, schema.Root, rec.handle) }()
	t.Cleanup(func() { wcancel(); <-watchDone })
	leader := leaderOf(t, st, members, endpoint)
	before, err := st.Get(ctx, schema.AgentKey("host1"))
	if err != nil || before == nil {
		t.Fatalf("read before the stop: %v", err)
	}
	stopRev := lastRevision(t, st)
	c.run("stop", "-t", "5", leader)
	t.Logf("stopped etcd member %s (the leader, %s) at revision %d", leader, endpoint[leader], stopRev)

	// Writes go on: a new attachment on host2 (intents written, host2's
	// agent watching, its status back), and a DEL on host1 that its agent
	// and the container agent in app1 both act on.
	nsB := attachment{host: "host2", container: "deploy-" + id + "-b", netns: newNS(), list: network("host2")}
	add(nsB)
	del(app)
	e.WaitGone(t, appStatus)
	e.WaitGone(t, statusKey(t, schema.InterfaceKey("host1", appID, "net1")))
	// The test's own watch carried on through the stop, whichever member
	// it was talking to.
	bKey := schema.InterfaceKey("host2", nsB.container, "net1")
	for _, want := range []struct {
		typ store.EventType
		key string
	}{
		{store.Put, bKey},
		{store.Put, statusKey(t, bKey)},
		{store.Delete, schema.InterfaceKey("host1", appID, "net1")},
		{store.Delete, appStatus},
	} {
		deadline := time.Now().Add(20 * time.Second)
		for !rec.seen(want.typ, want.key, stopRev) {
			if time.Now().After(deadline) {
				t.Fatalf("the watch did not deliver %s %s after the member stopped", want.typ, want.key)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The member comes back and catches up: read everything through it
	// alone, with the uspacectl built here.
	c.run("start", leader)
	// A restarted container gets a new ephemeral port.
	only := []string{strings.TrimSpace(c.run("port", leader, "2379"))}
	deadline := time.Now().Add(60 * time.Second)
	for {
		rows := map[string]uspacectlRow{}
		if out, err := shErr(nil, binaries.Path(t, "uspacectl"), "--etcd-endpoints", only[0], "--etcd-dial-timeout", "2s", "get", "interfaces", "-o", "json"); err == nil {
			var list []uspacectlRow
			if json.Unmarshal([]byte(out), &list) == nil {
				for _, r := range list {
					rows[r.Host+"/"+r.Name] = r
				}
			}
		}
		if rows["host2/"+nsB.container+"/net1"].Agrees {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted member %s never showed the interface written while it was down", leader)
		}
		time.Sleep(500 * time.Millisecond)
	}
	hosts := uspacectl(t, only, "hosts")
	ifaces := uspacectl(t, only, "interfaces")
	volumes := uspacectl(t, only, "volumes")
	for name, ok := range map[string]bool{
		"hosts host1":            hosts["host1/host1"].Agrees,
		"hosts host2":            hosts["host2/host2"].Agrees,
		"interfaces host2 a":     ifaces["host2/"+nsA.container+"/net1"].Agrees,
		"interfaces host2 b":     ifaces["host2/"+nsB.container+"/net1"].Agrees,
		"volumes host1 volume0":  volumes["host1/volume0"].Agrees,
		"no app1 interface left": len(ifaces) == 2,
	} {
		if !ok {
			t.Errorf("uspacectl via %s: %s does not hold: hosts %v, interfaces %v, volumes %v", leader, name, hosts, ifaces, volumes)
		}
	}

	// Clean up through the front doors: DEL, then the volume intent.
	del(nsA)
	del(nsB)
	e.Delete(t, volKey)
	e.WaitGone(t, statusKey(t, volKey))
	if _, err := os.Lstat(node); err == nil {
		t.Errorf("volume0's node %s is still there after its intent went", node)
	}

	// Down, and nothing left: no container, network or volume of the
	// project. The compose file mounts only bind mounts, so no volume can
	// hide among anonymous ones either.
	label := "label=com.docker.compose.project=" + c.project
	var mounts []string
	for _, cid := range strings.Fields(sh(t, nil, "docker", "ps", "-aq", "--filter", label)) {
		mounts = append(mounts, strings.Fields(sh(t, nil, "docker", "inspect", "--format", "{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}", cid))...)
	}
	for _, m := range mounts {
		if !strings.HasPrefix(m, "bind:") {
			t.Errorf("a container of the project mounts %s: the compose file should use bind mounts only", m)
		}
	}
	if err := c.down(); err != nil {
		t.Fatalf("compose down: %v", err)
	}
	downed = true
	for what, args := range map[string][]string{
		"container": {"ps", "-aq", "--filter", label},
		"network":   {"network", "ls", "-q", "--filter", label},
		"volume":    {"volume", "ls", "-q", "--filter", label},
	} {
		if left := strings.TrimSpace(sh(t, nil, "docker", args...)); left != "" {
			t.Errorf("compose down left a %s of project %s behind: %s", what, c.project, left)
		}
	}
	if left := strings.TrimSpace(sh(t, nil, "docker", "network", "ls", "-q", "--filter", "name="+c.project)); left != "" {
		t.Errorf("compose down left network(s) %s", left)
	}
	t.Logf("whole run: %v", time.Since(start).Round(time.Second))
}

// netconf is the upstream README's memif network as a runtime would load
// it, plus the uspace section pointing at the compose etcd.
func netconf(t *testing.T, host string, endpoints []string, ipamDir string) *libcni.NetworkConfigList {
	t.Helper()
	conf := map[string]any{
		"cniVersion": "1.0.0", "type": "userspace", "name": "memif-network",
		"host": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "bridge",
			"memif": map[string]any{"role": "master", "mode": "ethernet"}, "bridge": map[string]any{"bridgeName": "4"}},
		"container": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "interface",
			"memif": map[string]any{"role": "slave", "mode": "ethernet"}},
		"ipam": map[string]any{"type": "host-local", "subnet": "10.56.217.0/24", "rangeStart": "10.56.217.131",
			"rangeEnd": "10.56.217.190", "routes": []any{map[string]any{"dst": "0.0.0.0/0"}}, "gateway": "10.56.217.1",
			"dataDir": ipamDir},
		// Socket files: each host's vppsim runs in a container of its own
		// that sees neither this test's network namespaces nor its /proc
		// (a host VPP in a container without /var/run/netns: the opt-out's
		// case), and the test checks the files from outside.
		"uspace": map[string]any{"host": host, "etcd": map[string]any{"endpoints": endpoints}, "addTimeout": "30s", "memifSocket": "file"},
	}
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "90-userspace.conf"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := libcni.LoadNetworkConf(dir, "memif-network")
	if err != nil {
		t.Fatalf("libcni cannot load %s: %v", b, err)
	}
	return list
}

// installHostLocal puts the real host-local IPAM plugin next to the
// installed plugin, where a node has it.
func installHostLocal(t *testing.T, dir string) {
	t.Helper()
	if err := os.Symlink(binaries.Path(t, "host-local"), filepath.Join(dir, "host-local")); err != nil {
		t.Fatal(err)
	}
}

// checkInstalledConf loads uspace.conf as the plugin does.
func checkInstalledConf(t *testing.T, path string, endpoints []string, host string) {
	t.Helper()
	conf, err := cni.USpaceConf{}.Resolve(cni.Environment{
		Getenv: func(k string) string {
			if k == cni.EnvConfig {
				return path
			}
			return ""
		},
		ReadFile: os.ReadFile,
		Hostname: func() (string, error) { return "not-this", nil },
	})
	if err != nil {
		t.Fatalf("installed %s does not load: %v", path, err)
	}
	if !slices.Equal(conf.Etcd.Endpoints, endpoints) || conf.Host != host {
		t.Fatalf("installed %s: endpoints %v host %q, want %v and %q", path, conf.Etcd.Endpoints, conf.Host, endpoints, host)
	}
}

// checkInstallerCredentials runs the installer image with credentials the
// way the DaemonSet hands them over (files from a Secret mount, a password
// in the environment) and checks what lands on the host.
func checkInstallerCredentials(t *testing.T, image string) {
	t.Helper()
	secret, hostRoot := t.TempDir(), t.TempDir()
	for name, body := range map[string]string{"ca.pem": "CA\n", "uspace-host-node1.pem": "CERT\n", "uspace-host-node1-key.pem": "KEY\n"} {
		if err := os.WriteFile(filepath.Join(secret, name), []byte(body), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	sh(t, nil, "docker", "run", "--rm", "--network", "none",
		"-v", hostRoot+":/host", "-v", secret+":/etc/uspace/etcd:ro",
		"-e", "USPACE_HOST=node1",
		"-e", "USPACE_ETCD_ENDPOINTS=https://10.0.0.11:2379",
		"-e", "USPACE_ETCD_CACERT=/etc/uspace/etcd/ca.pem",
		"-e", "USPACE_ETCD_CERT=/etc/uspace/etcd/uspace-host-node1.pem",
		"-e", "USPACE_ETCD_KEY=/etc/uspace/etcd/uspace-host-node1-key.pem",
		"-e", "USPACE_ETCD_USER=uspace-host-node1", "-e", "USPACE_ETCD_PASSWORD=s3cret",
		image)
	data, err := os.ReadFile(filepath.Join(hostRoot, "etc", "uspace", "uspace.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("s3cret")) {
		t.Fatal("uspace.conf holds the etcd password itself")
	}
	var conf cni.USpaceConf
	if err := json.Unmarshal(data, &conf); err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string][2]string{
		"caCert":       {conf.Etcd.CACert, "/etc/uspace/etcd/ca.pem"},
		"cert":         {conf.Etcd.Cert, "/etc/uspace/etcd/cert.pem"},
		"key":          {conf.Etcd.Key, "/etc/uspace/etcd/key.pem"},
		"passwordFile": {conf.Etcd.PasswordFile, "/etc/uspace/etcd/password"},
		"username":     {conf.Etcd.Username, "uspace-host-node1"},
	} {
		if want[0] != want[1] {
			t.Errorf("installed uspace.conf etcd.%s = %q, want %q (the host's path)", field, want[0], want[1])
		}
	}
	for name, want := range map[string]struct {
		body string
		mode os.FileMode
	}{
		"ca.pem": {"CA\n", 0o644}, "cert.pem": {"CERT\n", 0o644}, "key.pem": {"KEY\n", 0o600}, "password": {"s3cret\n", 0o600},
	} {
		p := filepath.Join(hostRoot, "etc", "uspace", "etcd", name)
		b, err := os.ReadFile(p)
		fi, serr := os.Stat(p)
		if err != nil || serr != nil || string(b) != want.body || fi.Mode().Perm() != want.mode {
			t.Errorf("installed %s: %q (%v), want %q mode %o", p, b, err, want.body, want.mode)
		}
	}
}

// leaderOf names the member that leads the cluster now.
func leaderOf(t *testing.T, st *store.Client, members []string, endpoint map[string]string) string {
	t.Helper()
	ids := map[uint64]string{}
	var leader uint64
	for _, m := range members {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := st.Etcd().Status(ctx, endpoint[m])
		cancel()
		if err != nil {
			t.Fatalf("status of %s: %v", m, err)
		}
		ids[s.Header.MemberId] = m
		leader = s.Leader
	}
	name, ok := ids[leader]
	if !ok {
		t.Fatalf("leader %x is none of %v", leader, members)
	}
	return name
}

func lastRevision(t *testing.T, st *store.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := st.Etcd().Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Revision
}
