package volume_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
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
	"github.com/uspace-io/uspace/schema"
)

// contentType is what the Docker daemon sends to volume plugins.
const contentType = "application/vnd.docker.plugins.v1.2+json"

// driver is a running uspace-volume and a client for its socket.
type driver struct {
	proc   *harness.Proc
	socket string
	http   *http.Client
}

// startDriver runs uspace-volume for host h with plugin name name in
// pluginDir, written with the seed's single-dash -path flag, and waits until
// it answers /Plugin.Activate.
func startDriver(t *testing.T, e *harness.Etcd, h *harness.Host, pluginDir, name string) *driver {
	t.Helper()
	args := []string{
		"-path", h.VolumeRoot,
		"--name", name,
		"--plugin-dir", pluginDir,
		"--host", h.Name,
		"--etcd-endpoints", strings.Join(e.Endpoints, ","),
		"--timeout", "15s",
	}
	d := &driver{socket: filepath.Join(pluginDir, name+".sock")}
	d.http = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
		},
	}}
	d.proc = harness.StartProc(t, "uspace-volume", binaries.Path(t, "uspace-volume"), args)
	d.waitServing(t)
	return d
}

// waitServing polls the socket until the plugin answers: the test's view of
// Docker's plugin discovery, which retries the same way.
func (d *driver) waitServing(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var act struct{ Implements []string }
		status, errMsg, err := d.do("/Plugin.Activate", struct{}{}, &act)
		if err == nil && status == http.StatusOK && len(act.Implements) == 1 && act.Implements[0] == "VolumeDriver" {
			return
		}
		select {
		case <-d.proc.Exited():
			t.Fatalf("uspace-volume exited:\n%s", d.proc.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("uspace-volume not serving on %s: %v %d %s\n%s", d.socket, err, status, errMsg, d.proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restart kills the driver (a crash: its socket stays behind, stale) and
// starts it again.
func (d *driver) restart(t *testing.T) {
	t.Helper()
	d.proc.Kill()
	if _, err := os.Lstat(d.socket); err != nil {
		t.Fatalf("a killed driver should leave its socket behind: %v", err)
	}
	if err := d.proc.Start(); err != nil {
		t.Fatal(err)
	}
	d.waitServing(t)
}

// do posts req to path and decodes a 200 reply into resp; it returns the
// status and, for an error reply, Docker's {"Err": ...} message.
func (d *driver) do(path string, req, resp any) (int, string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, "", err
	}
	hr, err := http.NewRequest(http.MethodPost, "http://plugin"+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	hr.Header.Set("Content-Type", contentType)
	hr.Header.Set("Accept", contentType)
	r, err := d.http.Do(hr)
	if err != nil {
		return 0, "", err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return r.StatusCode, "", err
	}
	if r.StatusCode != http.StatusOK {
		var e struct{ Err string }
		if json.Unmarshal(b, &e) != nil || e.Err == "" {
			return r.StatusCode, "", fmt.Errorf("%s: status %d, body %q", path, r.StatusCode, b)
		}
		return r.StatusCode, e.Err, nil
	}
	if resp != nil {
		if err := json.Unmarshal(b, resp); err != nil {
			return r.StatusCode, "", fmt.Errorf("%s: decoding %q: %w", path, b, err)
		}
	}
	return r.StatusCode, "", nil
}

// call is do for calls that must succeed.
func (d *driver) call(t *testing.T, path string, req, resp any) {
	t.Helper()
	status, errMsg, err := d.do(path, req, resp)
	if err != nil || status != http.StatusOK {
		t.Fatalf("%s %+v: status %d, err %v %s", path, req, status, err, errMsg)
	}
}

// fail is do for calls that must fail with an error containing want.
func (d *driver) fail(t *testing.T, path string, req any, want string) {
	t.Helper()
	status, errMsg, err := d.do(path, req, nil)
	if err != nil {
		t.Fatalf("%s %+v: %v", path, req, err)
	}
	if status != http.StatusInternalServerError || !strings.Contains(errMsg, want) {
		t.Fatalf("%s %+v: status %d, error %q; want 500 with %q", path, req, status, errMsg, want)
	}
}

type nameReq struct{ Name string }

type idReq struct{ Name, ID string }

type createReq struct {
	Name string
	Opts map[string]string
}

type volumeInfo struct {
	Name       string
	Mountpoint string
	CreatedAt  string
	Status     map[string]any
}

func volStatusKey(h *harness.Host, name string) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindVolumeKey, Host: h.Name, Volume: name})
}

// intent reads a volume intent from etcd; nil when absent.
func intent(t *testing.T, e *harness.Etcd, h *harness.Host, name string) (*schema.Volume, int64) {
	t.Helper()
	kv, err := e.Store.Get(context.Background(), schema.VolumeKey(h.Name, name))
	if err != nil {
		t.Fatal(err)
	}
	if kv == nil {
		return nil, 0
	}
	v, err := schema.DecodeAs[schema.Volume](kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	return v, kv.ModRevision
}

// status reads a volume status from etcd; nil when absent.
func status(t *testing.T, e *harness.Etcd, h *harness.Host, name string) *schema.VolumeStatus {
	t.Helper()
	kv, err := e.Store.Get(context.Background(), volStatusKey(h, name))
	if err != nil {
		t.Fatal(err)
	}
	if kv == nil {
		return nil
	}
	s, err := schema.DecodeAs[schema.VolumeStatus](kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hostKeys lists every key of host h, intents and statuses.
func hostKeys(t *testing.T, e *harness.Etcd, h *harness.Host) []string {
	t.Helper()
	var keys []string
	for _, p := range []string{schema.VolumesPrefix(h.Name), schema.StatusHostPrefix(h.Name)} {
		kvs, _, err := e.Store.List(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			keys = append(keys, kv.Key)
		}
	}
	return keys
}

// assertNode checks that path is a block device node major:minor.
func assertNode(t *testing.T, path string, major, minor uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatalf("device node: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(st.Rdev) != major || unix.Minor(st.Rdev) != minor {
		t.Fatalf("%s: mode %o rdev %d:%d, want block %d:%d", path, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), major, minor)
	}
}

func isSocket(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Type() == fs.ModeSocket
}

func absent(path string) bool {
	_, err := os.Lstat(path)
	return err != nil
}

// rpc sends one JSON-RPC request to SPDK's socket, as scripts/rpc.py does,
// and returns the result; any error fails the test.
func rpc(t *testing.T, socket, method string, params any) json.RawMessage {
	t.Helper()
	res, err := rpcErr(socket, method, params)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// rpcErr is rpc returning SPDK's error instead of failing.
func rpcErr(socket, method string, params any) (json.RawMessage, error) {
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := map[string]any{"jsonrpc": "2.0", "id": 1, "method": method}
	if params != nil {
		req["params"] = params
	}
	b, _ := json.Marshal(req)
	if _, err := c.Write(b); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	var resp struct {
		Result json.RawMessage
		Error  *struct {
			Code    int
			Message string
		}
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", method, line, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("%s: SPDK error %d %s", method, resp.Error.Code, resp.Error.Message)
	}
	return resp.Result, nil
}
