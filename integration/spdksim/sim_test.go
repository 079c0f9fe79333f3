package spdksim_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/spdksim"
)

func startSim(t *testing.T) (*spdksim.Sim, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := spdksim.Start(spdksim.Options{RPCSocket: filepath.Join(dir, "spdk.sock"), VhostDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// raw is a hand-driven client connection, as rpc.py or socat would use.
type raw struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, s *spdksim.Sim) *raw {
	t.Helper()
	c, err := net.Dial("unix", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, r: bufio.NewReader(c)}
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// line reads one reply line (SPDK ends every reply with "\n").
func (r *raw) line() string {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read reply: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\n")
}

// call sends one request and returns the reply line.
func (r *raw) call(req string) string {
	r.t.Helper()
	r.send(req)
	return r.line()
}

// noReply asserts nothing arrives within d.
func (r *raw) noReply(d time.Duration) {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	if l, err := r.r.ReadString('\n'); err == nil || l != "" {
		r.t.Fatalf("unexpected reply %q (err %v)", l, err)
	}
	_ = r.c.SetReadDeadline(time.Time{})
}

type reply struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func parse(t *testing.T, l string) reply {
	t.Helper()
	var r reply
	if err := json.Unmarshal([]byte(l), &r); err != nil {
		t.Fatalf("reply %q: %v", l, err)
	}
	if r.JSONRPC != "2.0" {
		t.Fatalf("reply %q: jsonrpc %q", l, r.JSONRPC)
	}
	return r
}

func wantErr(t *testing.T, l string, code int, msg string) {
	t.Helper()
	r := parse(t, l)
	if r.Error == nil || r.Error.Code != code || r.Error.Message != msg {
		t.Fatalf("reply %s: want error %d %q", l, code, msg)
	}
}

func TestRawRPCPyCreateAndGet(t *testing.T) {
	s, _ := startSim(t)
	r := dialRaw(t, s)
	// Exactly what `rpc.py bdev_malloc_create 64 4096 -b Malloc0` sends.
	got := r.call(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1,"params":{"num_blocks":16384,"block_size":4096,"name":"Malloc0"}}`)
	if want := `{"jsonrpc":"2.0","id":1,"result":"Malloc0"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	rep := parse(t, r.call(`{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":2,"params":{"name":"Malloc0"}}`))
	var bdevs []map[string]any
	if err := json.Unmarshal(rep.Result, &bdevs); err != nil || len(bdevs) != 1 {
		t.Fatalf("bdev_get_bdevs: %s (%v)", rep.Result, err)
	}
	b := bdevs[0]
	if b["name"] != "Malloc0" || b["block_size"] != 4096.0 || b["num_blocks"] != 16384.0 ||
		b["product_name"] != "Malloc disk" || b["claimed"] != false || b["uuid"] == "" {
		t.Fatalf("bdev: %v", b)
	}
	// The uuid is an alias: bdev_get_bdevs finds the bdev by it.
	rep = parse(t, r.call(`{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":3,"params":{"name":"`+b["uuid"].(string)+`"}}`))
	if rep.Error != nil {
		t.Fatalf("by uuid: %v", rep.Error)
	}
	// v24.09 lists the UUID among the aliases.
	if al, _ := b["aliases"].([]any); len(al) != 1 || al[0] != b["uuid"] {
		t.Fatalf("aliases %v, want [uuid]", b["aliases"])
	}
	// Without a name SPDK picks Malloc<N>, N counting unnamed attempts
	// only: the first collides with the named Malloc0 (and still uses its
	// number up), the second is Malloc1 (measured on v24.09).
	wantErr(t, r.call(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":"x","params":{"num_blocks":8,"block_size":512}}`), -17, "File exists")
	got = r.call(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":"x","params":{"num_blocks":8,"block_size":512}}`)
	if want := `{"jsonrpc":"2.0","id":"x","result":"Malloc1"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	// spdk_get_version without params.
	rep = parse(t, r.call(`{"jsonrpc":"2.0","method":"spdk_get_version","id":4}`))
	var v struct {
		Version string         `json:"version"`
		Fields  map[string]any `json:"fields"`
	}
	if err := json.Unmarshal(rep.Result, &v); err != nil {
		t.Fatal(err)
	}
	// As the prebuilt v24.09 (not built from git): no sha1, no commit.
	if _, hasCommit := v.Fields["commit"]; v.Version != "SPDK v24.09" || v.Fields["major"] != 24.0 || v.Fields["minor"] != 9.0 || hasCommit {
		t.Fatalf("version: %+v", v)
	}
}

func TestRawFraming(t *testing.T) {
	s, _ := startSim(t)
	r := dialRaw(t, s)

	// Two requests in one write, no separator: two replies, in order.
	r.send(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1,"params":{"num_blocks":16,"block_size":512,"name":"A"}}` +
		`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":2,"params":{"num_blocks":16,"block_size":512,"name":"B"}}`)
	if l := r.line(); l != `{"jsonrpc":"2.0","id":1,"result":"A"}` {
		t.Fatalf("first: %s", l)
	}
	if l := r.line(); l != `{"jsonrpc":"2.0","id":2,"result":"B"}` {
		t.Fatalf("second: %s", l)
	}

	// Newline- and whitespace-separated requests work too.
	r.send("{\"jsonrpc\":\"2.0\",\"method\":\"spdk_get_version\",\"id\":3}\n \r\n{\"jsonrpc\":\"2.0\",\"method\":\"spdk_get_version\",\"id\":4}\n")
	if parse(t, r.line()).ID == nil || string(parse(t, r.line()).ID) != "4" {
		t.Fatal("newline-separated replies")
	}

	// A request split across writes is answered once complete.
	req := `{"jsonrpc":"2.0","method":"bdev_malloc_delete","id":5,"params":{"name":"A"}}`
	r.send(req[:30])
	r.noReply(100 * time.Millisecond)
	r.send(req[30:])
	if l := r.line(); l != `{"jsonrpc":"2.0","id":5,"result":true}` {
		t.Fatalf("split: %s", l)
	}
}

func TestRawNotification(t *testing.T) {
	s, _ := startSim(t)
	r := dialRaw(t, s)
	// A successful notification is executed but not answered: the next
	// reply on the wire is the one for id 7, and it sees the bdev.
	r.send(`{"jsonrpc":"2.0","method":"bdev_malloc_create","params":{"num_blocks":16384,"block_size":4096,"name":"Malloc0"}}`)
	rep := parse(t, r.call(`{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":7,"params":{"name":"Malloc0"}}`))
	if string(rep.ID) != "7" || rep.Error != nil {
		t.Fatalf("after notification: %+v", rep)
	}
	// A failing notification is answered, with id null (SPDK does that).
	wantErr(t, r.call(`{"jsonrpc":"2.0","method":"no_such_method"}`), -32601, "Method not found")
	l := r.call(`{"jsonrpc":"2.0","method":"bdev_malloc_delete","params":{"name":"nope"}}`)
	wantErr(t, l, -19, "No such device")
	if string(parse(t, l).ID) != "null" {
		t.Fatalf("error to notification: %s", l)
	}
	// "id": null is a request (answered), not a notification.
	if l := r.call(`{"jsonrpc":"2.0","method":"bdev_malloc_delete","id":null,"params":{"name":"Malloc0"}}`); l != `{"jsonrpc":"2.0","id":null,"result":true}` {
		t.Fatalf("id null: %s", l)
	}
}

func TestRawGarbage(t *testing.T) {
	s, _ := startSim(t)
	r := dialRaw(t, s)
	r.send("{this is not json\n")
	// v24.09 closes the connection without a reply.
	_ = r.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if b, err := r.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("unparseable input: want the connection closed without a reply, got %q %v", b, err)
	}
	// The server itself is fine.
	r2 := dialRaw(t, s)
	if rep := parse(t, r2.call(`{"jsonrpc":"2.0","method":"spdk_get_version","id":1}`)); rep.Error != nil {
		t.Fatal(rep.Error)
	}
}

func TestRawInvalidRequests(t *testing.T) {
	s, _ := startSim(t)
	r := dialRaw(t, s)
	for _, tc := range []struct{ req, id string }{
		{`{"jsonrpc":"1.0","method":"spdk_get_version","id":2}`, "null"},              // wrong version
		{`{"jsonrpc":"2.0","method":42,"id":3}`, "null"},                              // method not a string
		{`{"jsonrpc":"2.0","id":4}`, "null"},                                          // no method
		{`{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":5,"params":"x"}`, "5"},      // params not object/array
		{`{"jsonrpc":"2.0","method":"spdk_get_version","id":{"a":1}}`, "null"},        // bad id type
		{`{"jsonrpc":"2.0","method":"spdk_get_version","id":7,"extra":true}`, "null"}, // unknown key: strict decode
		{`[{"jsonrpc":"2.0","method":"spdk_get_version","id":8}]`, "null"},            // batch
		{"42\n", "null"}, // scalar (a number needs a delimiter to be complete)
		{`{"jsonrpc":"2.0","method":"spdk_get_version","id":"` + strings.Repeat("x", 200) + `"}`, "null"}, // id too long
	} {
		l := r.call(tc.req)
		wantErr(t, l, -32600, "Invalid request")
		if got := string(parse(t, l).ID); got != tc.id {
			t.Errorf("%s: reply id %s, want %s", tc.req, got, tc.id)
		}
	}
	// "params": null is no params (v24.09).
	if rep := parse(t, r.call(`{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":6,"params":null}`)); rep.Error != nil || string(rep.Result) != "[]" {
		t.Fatalf("params null: %+v", rep)
	}
	// A request without "jsonrpc" is accepted (v24.09).
	if rep := parse(t, r.call(`{"method":"spdk_get_version","id":1}`)); rep.Error != nil || string(rep.ID) != "1" {
		t.Fatalf("request without jsonrpc: %+v", rep)
	}
	// Invalid requests do not close the connection.
	if rep := parse(t, r.call(`{"jsonrpc":"2.0","method":"spdk_get_version","id":9}`)); rep.Error != nil {
		t.Fatal(rep.Error)
	}
}

// TestRawErrorTable checks every error path of SEED-FACTS section f (and
// the ones SPDK's sources add) with hand-written requests.
func TestRawErrorTable(t *testing.T) {
	s, dir := startSim(t)
	r := dialRaw(t, s)
	ok := func(req string) json.RawMessage {
		t.Helper()
		rep := parse(t, r.call(req))
		if rep.Error != nil {
			t.Fatalf("%s: %d %s", req, rep.Error.Code, rep.Error.Message)
		}
		return rep.Result
	}
	req := func(method, params string) string {
		if params == "" {
			return `{"jsonrpc":"2.0","method":"` + method + `","id":1}`
		}
		return `{"jsonrpc":"2.0","method":"` + method + `","id":1,"params":` + params + `}`
	}
	ok(req("bdev_malloc_create", `{"num_blocks":16384,"block_size":4096,"name":"Malloc0"}`))
	ok(req("bdev_malloc_create", `{"num_blocks":16384,"block_size":4096,"name":"Malloc1"}`))

	for _, tc := range []struct {
		name, method, params string
		code                 int
		msg                  string
	}{
		{"bdev duplicate", "bdev_malloc_create", `{"num_blocks":16,"block_size":512,"name":"Malloc0"}`, -17, "File exists"},
		{"num_blocks 0", "bdev_malloc_create", `{"num_blocks":0,"block_size":512,"name":"X"}`, -22, "Invalid argument"},
		{"block_size 1000", "bdev_malloc_create", `{"num_blocks":8,"block_size":1000,"name":"X"}`, -22, "Invalid argument"},
		{"create missing num_blocks", "bdev_malloc_create", `{"block_size":512,"name":"X"}`, -32603, "spdk_json_decode_object failed"},
		{"create unknown key", "bdev_malloc_create", `{"num_blocks":8,"block_size":512,"size":1}`, -32603, "spdk_json_decode_object failed"},
		{"create string number", "bdev_malloc_create", `{"num_blocks":"8","block_size":512}`, -32603, "spdk_json_decode_object failed"},
		{"create bad uuid", "bdev_malloc_create", `{"num_blocks":8,"block_size":512,"uuid":"nope"}`, -32603, "spdk_json_decode_object failed"},
		{"create no params", "bdev_malloc_create", ``, -32603, "spdk_json_decode_object failed"},
		{"get unknown bdev", "bdev_get_bdevs", `{"name":"nope"}`, -19, "No such device"},
		{"get bad params", "bdev_get_bdevs", `{"name":7}`, -32603, "spdk_json_decode_object failed"},
		{"delete unknown bdev", "bdev_malloc_delete", `{"name":"nope"}`, -19, "No such device"},
		{"delete no name", "bdev_malloc_delete", `{}`, -32603, "spdk_json_decode_object failed"},
		{"version with params", "spdk_get_version", `{}`, -32602, "spdk_get_version method requires no parameters"},
		{"unknown method", "bdev_lvol_create", `{}`, -32601, "Method not found"},
		{"blk unknown bdev", "vhost_create_blk_controller", `{"ctrlr":"vb0","dev_name":"nope"}`, -32602, "No such device"},
		{"blk no dev_name", "vhost_create_blk_controller", `{"ctrlr":"vb0"}`, -32602, "Invalid argument"},
		{"blk cpumask outside core mask", "vhost_create_blk_controller", `{"ctrlr":"vb0","dev_name":"Malloc0","cpumask":"0x2"}`, -32602, "Invalid argument"},
		{"blk bad transport", "vhost_create_blk_controller", `{"ctrlr":"vb0","dev_name":"Malloc0","transport":"vfio_user_virtio_blk"}`, -32602, "Invalid argument"},
		{"scsi unknown key", "vhost_create_scsi_controller", `{"ctrlr":"vs0","readonly":true}`, -32602, "Invalid argument"},
		{"add target unknown ctrlr", "vhost_scsi_controller_add_target", `{"ctrlr":"nope","scsi_target_num":0,"bdev_name":"Malloc0"}`, -32602, "No such device"},
		{"remove target unknown ctrlr", "vhost_scsi_controller_remove_target", `{"ctrlr":"nope","scsi_target_num":0}`, -32602, "No such device"},
		{"delete unknown ctrlr", "vhost_delete_controller", `{"ctrlr":"nope"}`, -32602, "No such device"},
		{"delete no params", "vhost_delete_controller", ``, -32602, "Invalid argument"},
		{"get unknown ctrlr", "vhost_get_controllers", `{"name":"nope"}`, -32603, "No such device"},
		{"get ctrlr bad params", "vhost_get_controllers", `{"ctrlr":"x"}`, -32603, "Invalid argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, r.call(req(tc.method, tc.params)), tc.code, tc.msg)
		})
	}

	// vhost-blk decoding is relaxed: unknown keys are tolerated.
	ok(req("vhost_create_blk_controller", `{"ctrlr":"vb0","dev_name":"Malloc0","readonly":false,"packed_ring":false,"unknown_key":1}`))
	wantErr(t, r.call(req("vhost_create_blk_controller", `{"ctrlr":"vb0","dev_name":"Malloc1"}`)), -32602, "File exists")
	ok(req("vhost_create_scsi_controller", `{"ctrlr":"vs0"}`))
	wantErr(t, r.call(req("vhost_create_scsi_controller", `{"ctrlr":"vs0"}`)), -32602, "File exists")
	wantErr(t, r.call(req("vhost_create_scsi_controller", `{"ctrlr":"vb0"}`)), -32602, "File exists")
	if got := string(ok(req("vhost_scsi_controller_add_target", `{"ctrlr":"vs0","scsi_target_num":0,"bdev_name":"Malloc0"}`))); got != "0" {
		t.Fatalf("add target 0: %s", got)
	}
	wantErr(t, r.call(req("vhost_scsi_controller_add_target", `{"ctrlr":"vs0","scsi_target_num":0,"bdev_name":"Malloc1"}`)), -32602, "File exists")
	wantErr(t, r.call(req("vhost_scsi_controller_add_target", `{"ctrlr":"vs0","scsi_target_num":8,"bdev_name":"Malloc1"}`)), -32602, "Invalid argument")
	wantErr(t, r.call(req("vhost_scsi_controller_add_target", `{"ctrlr":"vs0","scsi_target_num":1,"bdev_name":"nope"}`)), -32602, "Invalid argument")
	wantErr(t, r.call(req("vhost_scsi_controller_add_target", `{"ctrlr":"vb0","scsi_target_num":1,"bdev_name":"Malloc1"}`)), -32602, "Invalid argument")
	if got := string(ok(req("vhost_scsi_controller_add_target", `{"ctrlr":"vs0","scsi_target_num":-1,"bdev_name":"Malloc1"}`))); got != "1" {
		t.Fatalf("add first free target: %s", got)
	}
	wantErr(t, r.call(req("vhost_scsi_controller_remove_target", `{"ctrlr":"vs0","scsi_target_num":5}`)), -32602, "Device or resource busy")

	// vhost_get_controllers shapes.
	var ctrls []map[string]any
	if err := json.Unmarshal(ok(req("vhost_get_controllers", "")), &ctrls); err != nil || len(ctrls) != 2 {
		t.Fatalf("controllers: %v %v", ctrls, err)
	}
	blk, scsi := ctrls[0], ctrls[1]
	if blk["ctrlr"] != "vb0" || blk["cpumask"] != "0x1" || blk["socket"] != filepath.Join(dir, "vb0") {
		t.Fatalf("blk: %v", blk)
	}
	bb := blk["backend_specific"].(map[string]any)["block"].(map[string]any)
	if bb["bdev"] != "Malloc0" || bb["readonly"] != false || bb["transport"] != "vhost_user_blk" {
		t.Fatalf("blk backend: %v", bb)
	}
	tgts := scsi["backend_specific"].(map[string]any)["scsi"].([]any)
	if len(tgts) != 2 {
		t.Fatalf("scsi targets: %v", tgts)
	}
	t0 := tgts[0].(map[string]any)
	lun := t0["luns"].([]any)[0].(map[string]any)
	if t0["scsi_dev_num"] != 0.0 || t0["target_name"] != "Target 0" || lun["bdev_name"] != "Malloc0" || lun["id"] != 0.0 {
		t.Fatalf("scsi target 0: %v", t0)
	}

	ok(req("vhost_scsi_controller_remove_target", `{"ctrlr":"vs0","scsi_target_num":0}`))
	ok(req("vhost_delete_controller", `{"ctrlr":"vs0"}`))
	// v24.09 deleted vs0 with its target 1 still in place, and answered true.
	wantErr(t, r.call(req("vhost_get_controllers", `{"name":"vs0"}`)), -32603, "No such device")
	if snap := s.Snapshot(); len(snap.Controllers) != 1 || snap.Controllers[0].Ctrlr != "vb0" {
		t.Fatalf("after deleting vs0: %+v", snap.Controllers)
	}

	// A non-socket file where the controller socket goes: EIO.
	if err := os.WriteFile(filepath.Join(dir, "vfile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wantErr(t, r.call(req("vhost_create_scsi_controller", `{"ctrlr":"vfile"}`)), -32602, "Input/output error")
}

func TestHotRemove(t *testing.T) {
	s, _ := startSim(t)
	r := dialRaw(t, s)
	for _, q := range []string{
		`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1,"params":{"num_blocks":8,"block_size":512,"name":"M0"}}`,
		`{"jsonrpc":"2.0","method":"vhost_create_blk_controller","id":2,"params":{"ctrlr":"vb0","dev_name":"M0"}}`,
		`{"jsonrpc":"2.0","method":"vhost_create_scsi_controller","id":3,"params":{"ctrlr":"vs0"}}`,
		`{"jsonrpc":"2.0","method":"vhost_scsi_controller_add_target","id":4,"params":{"ctrlr":"vs0","scsi_target_num":0,"bdev_name":"M0"}}`,
		// In-use bdevs are not claimed by vhost: the delete succeeds.
		`{"jsonrpc":"2.0","method":"bdev_malloc_delete","id":5,"params":{"name":"M0"}}`,
	} {
		if rep := parse(t, r.call(q)); rep.Error != nil {
			t.Fatalf("%s: %+v", q, rep.Error)
		}
	}
	l := r.call(`{"jsonrpc":"2.0","method":"vhost_get_controllers","id":6}`)
	if !strings.Contains(l, `"block":{"readonly":false,"bdev":null,"transport":"vhost_user_blk"}`) ||
		!strings.Contains(l, `"scsi":[]`) {
		t.Fatalf("after hot-remove: %s", l)
	}
	snap := s.Snapshot()
	if len(snap.Bdevs) != 0 || snap.Controllers[0].Bdev != "" || len(snap.Controllers[1].Targets) != 0 {
		t.Fatalf("snapshot: %+v", snap)
	}
}

func TestSocketsRestartClose(t *testing.T) {
	s, dir := startSim(t)
	r := dialRaw(t, s)
	r.call(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1,"params":{"num_blocks":8,"block_size":512,"name":"M0"}}`)
	r.call(`{"jsonrpc":"2.0","method":"vhost_create_blk_controller","id":2,"params":{"ctrlr":"vb0","dev_name":"M0"}}`)
	sock := filepath.Join(dir, "vb0")
	assertSocket(t, sock, true)
	if snap := s.Snapshot(); len(snap.Controllers) != 1 || snap.Controllers[0].Socket != sock {
		t.Fatalf("snapshot: %+v", snap)
	}

	// Crash-restart: state and connections gone, socket file left stale.
	if err := s.Restart(spdksim.RestartOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = r.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("old connection survived restart: %v", err)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("stale socket file should remain after a crash: %v", err)
	}
	assertSocket(t, sock, false)
	snap := s.Snapshot()
	if snap.Boot != 1 || len(snap.Bdevs) != 0 || len(snap.Controllers) != 0 {
		t.Fatalf("after restart: %+v", snap)
	}
	// Recreating the controller replaces the stale socket.
	r = dialRaw(t, s)
	if got := r.call(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1,"params":{"num_blocks":8,"block_size":512}}`); got != `{"jsonrpc":"2.0","id":1,"result":"Malloc0"}` {
		t.Fatalf("malloc counter not reset: %s", got)
	}
	if rep := parse(t, r.call(`{"jsonrpc":"2.0","method":"vhost_create_blk_controller","id":2,"params":{"ctrlr":"vb0","dev_name":"Malloc0"}}`)); rep.Error != nil {
		t.Fatal(rep.Error)
	}
	assertSocket(t, sock, true)

	// Clean restart removes the socket files.
	if err := s.Restart(spdksim.RestartOptions{RemoveSockets: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket should be gone: %v", err)
	}

	r = dialRaw(t, s)
	r.call(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1,"params":{"num_blocks":8,"block_size":512,"name":"M0"}}`)
	r.call(`{"jsonrpc":"2.0","method":"vhost_create_scsi_controller","id":2,"params":{"ctrlr":"vs0"}}`)
	assertSocket(t, filepath.Join(dir, "vs0"), true)
	// Close is a clean stop: RPC socket and controller sockets removed.
	s.Close()
	for _, p := range []string{s.Addr(), filepath.Join(dir, "vs0")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s should be removed on Close: %v", p, err)
		}
	}
}

func assertSocket(t *testing.T, path string, live bool) {
	t.Helper()
	fi, err := os.Lstat(path)
	if live && (err != nil || fi.Mode()&os.ModeSocket == 0) {
		t.Fatalf("%s: want a socket: %v", path, err)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
	}
	if live != (err == nil) {
		t.Fatalf("%s: dial err %v, want live=%t", path, err, live)
	}
}

func TestFaults(t *testing.T) {
	s, _ := startSim(t)
	r := dialRaw(t, s)
	create := `{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1,"params":{"num_blocks":8,"block_size":512,"name":"M0"}}`

	s.FailNext("bdev_malloc_create", 2, -12, "Cannot allocate memory")
	wantErr(t, r.call(create), -12, "Cannot allocate memory")
	wantErr(t, r.call(create), -12, "Cannot allocate memory")
	if rep := parse(t, r.call(create)); rep.Error != nil {
		t.Fatal(rep.Error)
	}
	if n := s.Calls("bdev_malloc_create"); n != 3 {
		t.Fatalf("calls %d", n)
	}

	// Drop before applying: no effect, connection closed.
	s.DropNext("bdev_malloc_delete", 1, false)
	r.send(`{"jsonrpc":"2.0","method":"bdev_malloc_delete","id":2,"params":{"name":"M0"}}`)
	_ = r.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("want EOF: %v", err)
	}
	if len(s.Snapshot().Bdevs) != 1 {
		t.Fatal("dropped call must not apply")
	}
	// Drop after applying: effect stays, reply lost.
	r = dialRaw(t, s)
	s.DropNext("", 1, true)
	r.send(`{"jsonrpc":"2.0","method":"bdev_malloc_delete","id":3,"params":{"name":"M0"}}`)
	_ = r.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("want EOF: %v", err)
	}
	if len(s.Snapshot().Bdevs) != 0 {
		t.Fatal("after-apply drop must apply")
	}

	// Latency.
	r = dialRaw(t, s)
	s.SetLatency("spdk_get_version", 150*time.Millisecond)
	start := time.Now()
	r.call(`{"jsonrpc":"2.0","method":"spdk_get_version","id":4}`)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("latency not applied: %v", d)
	}
	s.ClearFaults()

	// DropConnections closes r.
	if n := s.DropConnections(); n != 1 {
		t.Fatalf("dropped %d", n)
	}
	_ = r.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("want EOF: %v", err)
	}
}

func TestBdevGetBdevsTimeoutWaits(t *testing.T) {
	s, _ := startSim(t)
	r := dialRaw(t, s)
	r2 := dialRaw(t, s)
	r.send(`{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":1,"params":{"name":"Late","timeout":5000}}`)
	time.Sleep(50 * time.Millisecond)
	r2.call(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1,"params":{"num_blocks":8,"block_size":512,"name":"Late"}}`)
	if rep := parse(t, r.line()); rep.Error != nil || !strings.Contains(string(rep.Result), `"Late"`) {
		t.Fatalf("waited get: %+v", rep)
	}
	start := time.Now()
	// A wait that runs out is -110 in v24.09, not -19.
	wantErr(t, r.call(`{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":2,"params":{"name":"Never","timeout":100}}`), -110, "Connection timed out")
	if time.Since(start) < 100*time.Millisecond {
		t.Fatal("timeout not honoured")
	}
}

func TestControlSocket(t *testing.T) {
	s, dir := startSim(t)
	ctl, err := s.ServeControl(filepath.Join(dir, "ctl.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call := func(req spdksim.ControlRequest) json.RawMessage {
		t.Helper()
		res, err := spdksim.ControlCall(ctx, filepath.Join(dir, "ctl.sock"), req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	call(spdksim.ControlRequest{Cmd: "fail", Method: "spdk_get_version", Count: 1, Code: -1, Message: "Method may only be called after framework is initialized using framework_start_init RPC."})
	r := dialRaw(t, s)
	wantErr(t, r.call(`{"jsonrpc":"2.0","method":"spdk_get_version","id":1}`), -1,
		"Method may only be called after framework is initialized using framework_start_init RPC.")
	r.call(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":2,"params":{"num_blocks":8,"block_size":512,"name":"M0"}}`)
	var snap spdksim.Snapshot
	if err := json.Unmarshal(call(spdksim.ControlRequest{Cmd: "snapshot"}), &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Bdevs) != 1 || snap.Bdevs[0].Name != "M0" || snap.Calls["spdk_get_version"] != 1 {
		t.Fatalf("snapshot: %+v", snap)
	}
	call(spdksim.ControlRequest{Cmd: "restart"})
	if s.Boot() != 1 || len(s.Snapshot().Bdevs) != 0 {
		t.Fatal("restart via control socket")
	}
	if _, err := spdksim.ControlCall(ctx, filepath.Join(dir, "ctl.sock"), spdksim.ControlRequest{Cmd: "bogus"}); err == nil {
		t.Fatal("unknown command accepted")
	}
}

// TestMemory checks the answers v24.09 gives about memory, measured with
// spdk_tgt --no-huge -s 2048: the buffer is allocated before anything else
// is checked, so block_size 0 and a duplicate name at full memory are -12.
func TestMemory(t *testing.T) {
	s, _ := startSim(t)
	r := dialRaw(t, s)
	create := func(name string, blocks int) string {
		return r.call(fmt.Sprintf(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1,"params":{"num_blocks":%d,"block_size":4096,"name":%q}}`, blocks, name))
	}
	wantErr(t, r.call(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1,"params":{"num_blocks":8,"block_size":0,"name":"z"}}`), -12, "Cannot allocate memory")
	wantErr(t, r.call(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1,"params":{"num_blocks":8,"block_size":512,"name":""}}`), -22, "Invalid argument")
	wantErr(t, r.call(`{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1,"params":{"num_blocks":8,"block_size":512,"numa_id":0}}`), -32603, "spdk_json_decode_object failed")
	// The default limit: sixteen 64 MiB bdevs fit, a seventeenth does not.
	for i := range 16 {
		if rep := parse(t, create(fmt.Sprintf("M%d", i), 16384)); rep.Error != nil {
			t.Fatalf("bdev %d of 64 MiB: %+v", i, rep.Error)
		}
	}
	wantErr(t, create("M16", 16384), -12, "Cannot allocate memory")
	// At full memory a duplicate name is -12 first; a small one is -17.
	wantErr(t, create("M0", 16384), -12, "Cannot allocate memory")
	wantErr(t, create("M0", 2), -17, "File exists")
	if rep := parse(t, create("S", 4096)); rep.Error != nil {
		t.Fatalf("16 MiB more: %+v", rep.Error)
	}
}
