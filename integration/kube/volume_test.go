package kube_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/kube"
	"github.com/uspace-io/uspace/schema"
)

// volumeWithoutKata: a vhost-user-blk volume on the node's SPDK, made by
// the host agent of the DaemonSet, as a pod with runc (no Kata) gets it.
// The volume is created and mounted through uspace-volume's plugin API (as
// the Docker daemon would; Kubernetes has no call for it), which hands out
// the block node b 241:<minor>. A runc pod given the node and the socket
// directory by hostPath sees the node but cannot open it (nothing drives
// major 241 outside a Kata VM), while the socket answers a vhost-user
// handshake: a userspace vhost-user-blk driver in the pod can use it.
func (e *env) volumeWithoutKata(t *testing.T) {
	spdk := e.StartSPDK(t)
	image := e.ImportTestImage(t, "blockcheck")
	d := e.startVolumeDriver(t)
	d.call(t, "Create", map[string]any{"Name": "kvol0", "Opts": map[string]string{"size": "64MiB"}}, nil)
	var mnt struct{ Mountpoint string }
	d.call(t, "Mount", map[string]any{"Name": "kvol0", "ID": "kube-flow"}, &mnt)
	dev := filepath.Join(kube.VhostUserRoot, "block", "devices", "kvol0")
	if mnt.Mountpoint != dev {
		t.Fatalf("Mount answered %q, want the device node %s", mnt.Mountpoint, dev)
	}
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(st.Rdev) != 241 {
		t.Fatalf("device node %s: %v, mode %o, major %d; want a block node of major 241", dev, err, st.Mode, unix.Major(st.Rdev))
	}
	if ctrls := string(spdk.RPC(t, "vhost_get_controllers", nil)); !strings.Contains(ctrls, `"kvol0"`) {
		t.Fatalf("SPDK has no controller kvol0: %s", ctrls)
	}

	e.Apply(t, volumePod(image))
	e.WaitFor(t, "the volume pod's checks", 2*time.Minute, func() error {
		phase, err := e.KubectlErr("get", "pod", "volume-user", "-o", "jsonpath={.status.phase}")
		return errIf(err != nil || phase != "Succeeded", "phase %q (%v)", phase, err)
	})
	logs := e.Kubectl(t, "logs", "volume-user")
	t.Logf("a runc pod given volume kvol0:\n%s", logs)
	for _, want := range []string{"/dev/uspace/kvol0: block device 241:", "operation not permitted", "/run/vhost-user/kvol0: socket, vhost-user features 0x"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the pod's view lacks %q:\n%s", want, logs)
		}
	}
	e.deletePod(t, "volume-user")
	d.call(t, "Unmount", map[string]any{"Name": "kvol0", "ID": "kube-flow"}, nil)
	d.call(t, "Remove", map[string]any{"Name": "kvol0"}, nil)
	if _, err := os.Lstat(dev); err == nil {
		t.Errorf("device node %s left after Remove", dev)
	}
	if ctrls := string(spdk.RPC(t, "vhost_get_controllers", nil)); strings.Contains(ctrls, `"kvol0"`) {
		t.Errorf("SPDK controller kvol0 left after Remove: %s", ctrls)
	}
	if keys := e.Keys(t, schema.VolumesPrefix(kube.NodeName)); len(keys) > 0 {
		t.Errorf("volume intents left: %v", keys)
	}
}

func volumePod(image string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: volume-user, namespace: default}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  containers:
  - name: check
    image: %s
    imagePullPolicy: Never
    args: ["/dev/uspace/kvol0", "/run/vhost-user/kvol0"]
    volumeMounts:
    - {name: device, mountPath: /dev/uspace/kvol0}
    - {name: sockets, mountPath: /run/vhost-user}
  volumes:
  - name: device
    hostPath: {path: %s/block/devices/kvol0, type: BlockDevice}
  - name: sockets
    hostPath: {path: %s/block/sockets, type: Directory}
`, image, kube.VhostUserRoot, kube.VhostUserRoot)
}

// volumeDriver is uspace-volume on the node, as the node's host identity,
// and a client of its plugin socket.
type volumeDriver struct {
	socket string
	http   *http.Client
}

func (e *env) startVolumeDriver(t *testing.T) *volumeDriver {
	t.Helper()
	ca, cert, key := e.HostCredentials()
	dir := harness.ShortTempDir(t)
	d := &volumeDriver{socket: filepath.Join(dir, "uspace.sock")}
	d.http = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
		},
	}}
	harness.StartProc(t, "uspace-volume", binaries.Path(t, "uspace-volume"), []string{"--path", kube.VhostUserRoot,
		"--name", "uspace", "--plugin-dir", dir, "--host", kube.NodeName, "--etcd-endpoints", e.EtcdURL,
		"--etcd-cacert", ca, "--etcd-cert", cert, "--etcd-key", key})
	e.WaitFor(t, "uspace-volume's socket", time.Minute, func() error {
		_, err := os.Stat(d.socket)
		return err
	})
	return d
}

// call posts one request of Docker's volume plugin protocol and fails the
// test on an error answer.
func (d *volumeDriver) call(t *testing.T, method string, req, resp any) {
	t.Helper()
	body, _ := json.Marshal(req)
	r, err := d.http.Post("http://plugin/VolumeDriver."+method, "application/vnd.docker.plugins.v1.2+json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("VolumeDriver.%s: %v", method, err)
	}
	defer r.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		t.Fatalf("VolumeDriver.%s: answer: %v", method, err)
	}
	var e struct{ Err string }
	if json.Unmarshal(raw, &e) == nil && e.Err != "" {
		t.Fatalf("VolumeDriver.%s: %s", method, e.Err)
	}
	if resp != nil {
		if err := json.Unmarshal(raw, resp); err != nil {
			t.Fatal(err)
		}
	}
}
