package containeragent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/schema"
)

func docker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// unixProxy serves a unix socket that forwards to a TCP address: the
// sandbox's network namespace (--net=none) has only loopback, so the app
// container reaches etcd through a socket bind-mounted into it.
func unixProxy(t *testing.T, path, target string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
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
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(u, c); u.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

// The seed's docker-run flow (scripts/vpp-docker-run.sh, and cni/README's
// "Containers without Kubernetes"): a sandbox started with --net=none, the
// CNI ADD with the sandbox's ID and netns, then the app container joining
// the sandbox's network with --net=container:<sandbox> and no
// USPACE_CONTAINER_ID. The agent in the app container finds the sandbox's
// ID (its own cgroup names the app container) and converges.
func TestDockerRunFlow(t *testing.T) {
	if out, err := exec.Command("docker", "info", "--format", "{{.CgroupVersion}}").CombinedOutput(); err != nil {
		t.Skipf("no Docker daemon reachable (docker info: %v: %s)", err, strings.TrimSpace(string(out)))
	} else {
		t.Logf("cgroup version %s", strings.TrimSpace(string(out)))
	}
	e := harness.StartEtcd(t)
	h := e.StartHost(t, host)
	run := fmt.Sprintf("uspace-test-%d", os.Getpid())

	// The image: FROM scratch, the static agent and a pause binary.
	dir := harness.ShortTempDir(t)
	if out, err := exec.Command("cp", binaries.Path(t, "uspace-agent"), filepath.Join(dir, "uspace-agent")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "pause"), "./testdata/pause")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build pause: %v\n%s", err, out)
	}
	tarball := filepath.Join(dir, "image.tar")
	if out, err := exec.Command("tar", "-C", dir, "-cf", tarball, "uspace-agent", "pause").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	image := run + ":latest"
	docker(t, "import", "--change", `ENTRYPOINT ["/uspace-agent"]`, tarball, image)
	t.Cleanup(func() { exec.Command("docker", "image", "rm", "-f", image).Run() })

	sandbox := docker(t, "run", "-d", "--name", run+"-sandbox", "--net=none", "--entrypoint", "/pause", image)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", sandbox).Run() })
	pid := docker(t, "inspect", "-f", "{{.State.Pid}}", sandbox)

	// CNI ADD as exec-plugins.sh does it: the sandbox's ID and netns.
	conf := map[string]any{"cniVersion": "0.3.1", "type": "userspace", "name": "memif-network",
		"host": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "bridge",
			"memif": map[string]any{"role": "master", "mode": "ethernet"}, "bridge": map[string]any{"bridgeName": "4"}},
		"container": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "interface",
			"memif": map[string]any{"role": "slave", "mode": "ethernet"}},
		"ipam":      map[string]any{"type": "host-local", "subnet": "10.56.217.0/24", "dataDir": filepath.Join(dir, "ipam")},
		"sharedDir": h.SharedDir,
		"uspace":    map[string]any{"etcd": map[string]any{"endpoints": e.Endpoints}, "host": host, "addTimeout": "20s"},
	}
	stdin, _ := json.Marshal(conf)
	pluginDir := filepath.Dir(binaries.Path(t, "userspace"))
	if d := filepath.Dir(binaries.Path(t, "host-local")); d != pluginDir {
		pluginDir += ":" + d
	}
	add := exec.Command(binaries.Path(t, "userspace"))
	add.Env = append(os.Environ(), "CNI_COMMAND=ADD", "CNI_CONTAINERID="+sandbox, "CNI_NETNS=/proc/"+pid+"/ns/net",
		"CNI_IFNAME=eth0", "CNI_PATH="+pluginDir)
	add.Stdin = strings.NewReader(string(stdin))
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("CNI ADD: %v\n%s", err, out)
	}

	// The app container: its own VPP (a simulator here, its API socket
	// bind-mounted), the shared socket directory, etcd through a socket.
	vppDir := harness.ShortTempDir(t)
	sim, err := vppsim.Start(vppsim.Options{Socket: filepath.Join(vppDir, "api.sock"), RuntimeDir: vppDir})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	etcdDir := harness.ShortTempDir(t)
	unixProxy(t, filepath.Join(etcdDir, "etcd.sock"), strings.TrimPrefix(e.Endpoints[0], "http://"))
	app := docker(t, "run", "-d", "--name", run+"-app", "--net=container:"+sandbox,
		"-v", vppDir+":/run/vpp", "-v", h.SharedDir+":"+h.SharedDir, "-v", etcdDir+":/run/etcd",
		"-e", "USPACE_HOST="+host, "-e", "USPACE_ETCD_ENDPOINTS=unix:///run/etcd/etcd.sock", "-e", "USPACE_LOG_LEVEL=debug",
		image, "container", "--vpp-socket", "/run/vpp/api.sock", "--shared-dir", h.SharedDir)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", app).CombinedOutput()
			t.Logf("app container log:\n%s", out)
		}
		exec.Command("docker", "rm", "-f", app).Run()
	})

	s := harness.WaitStatus[schema.InterfaceStatus](t, e, statusKey(sandbox, "eth0"), 0, harness.Ready[schema.InterfaceStatus])
	if n := len(sim.Snapshot().Memifs); n != 1 {
		t.Fatalf("container VPP holds %d memifs, want 1", n)
	}
	logs, _ := exec.Command("docker", "logs", app).CombinedOutput()
	if !strings.Contains(string(logs), "container identified") || !strings.Contains(string(logs), "docker container "+sandbox) {
		t.Errorf("the agent did not say how it found the sandbox:\n%s", logs)
	}
	t.Logf("converged: %+v", s)
}
