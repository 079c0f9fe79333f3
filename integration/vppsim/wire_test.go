package vppsim_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/codec"

	"github.com/uspace-io/uspace/integration/vppsim"
)

// rawClient speaks the socket protocol by hand, the way GoVPP's socket
// client does, including junk in the header bytes a server must ignore.
type rawClient struct {
	t     fataler
	conn  net.Conn
	r     *bufio.Reader
	index uint32
	table map[string]uint16
}

// fataler is the part of testing.TB the raw client needs; goroutines use
// goFatal, which fails the test and ends only the calling goroutine.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

type goFatal struct{ t *testing.T }

func (g goFatal) Helper()           {}
func (g goFatal) Fatal(args ...any) { g.t.Error(args...); runtime.Goexit() }
func (g goFatal) Fatalf(f string, args ...any) {
	g.t.Errorf(f, args...)
	runtime.Goexit()
}

func frame(payload []byte) []byte {
	b := make([]byte, 16+len(payload))
	for i := 0; i < 8; i++ {
		b[i] = 0xAA // junk, like GoVPP's pooled header buffer
	}
	binary.BigEndian.PutUint32(b[8:12], uint32(len(payload)))
	for i := 12; i < 16; i++ {
		b[i] = 0x55
	}
	copy(b[16:], payload)
	return b
}

func dialRaw(t *testing.T, socket string) *rawClient {
	t.Helper()
	conn, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *rawClient) write(payloads ...[]byte) {
	c.t.Helper()
	var all []byte
	for _, p := range payloads {
		all = append(all, frame(p)...)
	}
	if _, err := c.conn.Write(all); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) read() []byte {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(c.r, hdr); err != nil {
		c.t.Fatalf("read header: %v", err)
	}
	for i, b := range hdr {
		if (i < 8 || i >= 12) && b != 0 {
			c.t.Fatalf("server header byte %d = %#x, want 0", i, b)
		}
	}
	msg := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
	if _, err := io.ReadFull(c.r, msg); err != nil {
		c.t.Fatalf("read payload: %v", err)
	}
	return msg
}

func (c *rawClient) handshake() {
	c.t.Helper()
	msg, err := codec.DefaultCodec.EncodeMsg(&memclnt.SockclntCreate{Name: "raw"}, 15)
	if err != nil {
		c.t.Fatal(err)
	}
	msg[5] = 123
	c.write(msg)
	rep := c.read()
	reply := new(memclnt.SockclntCreateReply)
	if err := codec.DefaultCodec.DecodeMsg(rep, reply); err != nil {
		c.t.Fatal(err)
	}
	if reply.Response != 0 || reply.Index == 0 || int(reply.Count) != len(reply.MessageTable) {
		c.t.Fatalf("sockclnt_create_reply = response %d index %d count %d/%d", reply.Response, reply.Index, reply.Count, len(reply.MessageTable))
	}
	if ctx := binary.BigEndian.Uint32(rep[6:10]); ctx != 123 {
		c.t.Fatalf("sockclnt_create_reply context = %d, want 123", ctx)
	}
	c.index = reply.Index
	c.table = map[string]uint16{}
	for _, e := range reply.MessageTable {
		if strings.ContainsRune(e.Name, 0) {
			c.t.Fatalf("table name %q carries NUL", e.Name)
		}
		if _, dup := c.table[e.Name]; dup {
			c.t.Fatalf("duplicate table entry %q", e.Name)
		}
		c.table[e.Name] = e.Index
	}
}

func (c *rawClient) request(m api.Message, clientIndex, context uint32) []byte {
	c.t.Helper()
	id, ok := c.table[m.GetMessageName()+"_"+m.GetCrcString()]
	if !ok {
		c.t.Fatalf("%s not in table", m.GetMessageName())
	}
	b, err := codec.DefaultCodec.EncodeMsg(m, id)
	if err != nil {
		c.t.Fatal(err)
	}
	binary.BigEndian.PutUint32(b[2:6], clientIndex)
	binary.BigEndian.PutUint32(b[6:10], context)
	return b
}

func (c *rawClient) expect(m api.Message, context uint32, data []byte) {
	c.t.Helper()
	id := binary.BigEndian.Uint16(data[0:2])
	if want := c.table[m.GetMessageName()+"_"+m.GetCrcString()]; id != want {
		c.t.Fatalf("got message id %d, want %s (%d)", id, m.GetMessageName(), want)
	}
	if got := binary.BigEndian.Uint32(data[2:6]); got != context {
		c.t.Fatalf("%s context = %#x, want %#x", m.GetMessageName(), got, context)
	}
	if err := codec.DefaultCodec.DecodeMsg(data, m); err != nil {
		c.t.Fatal(err)
	}
}

func TestWireProtocol(t *testing.T) {
	s := newSim(t, vppsim.Options{})
	c := dialRaw(t, s.Socket())
	c.handshake()
	for _, name := range []string{
		"sockclnt_create_455fb9c4", "sockclnt_create_reply_35166268",
		"control_ping_51077d14", "control_ping_reply_f6b0b8ca",
		"sockclnt_delete_8ac76db6", "sockclnt_delete_reply_8f38b1ee",
		"memif_create_v2_8c7de5f7", "memif_details_da34feb9", "sw_interface_dump_aa610c27",
	} {
		if _, ok := c.table[name]; !ok {
			t.Fatalf("message table lacks %s", name)
		}
	}
	if c.table["sockclnt_create_455fb9c4"] != 15 {
		t.Fatalf("sockclnt_create id = %d, want 15", c.table["sockclnt_create_455fb9c4"])
	}

	// A request with a client index that is not ours is dropped (VPP finds
	// no registration); the next proper one is answered.
	c.write(c.request(&memclnt.ControlPing{}, c.index+100, 1), c.request(&memclnt.ControlPing{}, c.index, 0xdeadbeef))
	pr := new(memclnt.ControlPingReply)
	c.expect(pr, 0xdeadbeef, c.read())
	if pr.ClientIndex != c.index || pr.VpePID != s.Snapshot().VpePID {
		t.Fatalf("control_ping_reply = %+v", pr)
	}

	// An unknown message id is dropped, the connection stays usable.
	unknown := make([]byte, 10)
	binary.BigEndian.PutUint16(unknown, 9999)
	c.write(unknown)

	// A dump followed by control_ping with the same context, sent in one
	// write: details, then the ping reply closing the stream.
	const ctx = 0x00030007
	c.write(c.request(&interfaces.SwInterfaceDump{SwIfIndex: anyIndex}, c.index, ctx), c.request(&memclnt.ControlPing{}, c.index, ctx))
	d := new(interfaces.SwInterfaceDetails)
	c.expect(d, ctx, c.read())
	if d.InterfaceName != "local0" || d.SwIfIndex != 0 {
		t.Fatalf("details = %+v", d)
	}
	c.expect(new(memclnt.ControlPingReply), ctx, c.read())

	// sockclnt_delete is answered, then the server closes the connection.
	c.write(c.request(&memclnt.SockclntDelete{Index: c.index}, c.index, 124))
	dr := new(memclnt.SockclntDeleteReply)
	c.expect(dr, 124, c.read())
	if dr.Response != 0 {
		t.Fatalf("sockclnt_delete_reply response %d", dr.Response)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("expected EOF after sockclnt_delete, got %v", err)
	}
}

func TestWireConcurrentClients(t *testing.T) {
	s := newSim(t, vppsim.Options{})
	const n = 8
	var wg sync.WaitGroup
	indexes := make([]uint32, n)
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			conn, err := net.Dial("unix", s.Socket())
			if err != nil {
				errs <- err.Error()
				return
			}
			defer conn.Close()
			c := &rawClient{t: goFatal{t}, conn: conn, r: bufio.NewReader(conn)}
			c.handshake()
			indexes[i] = c.index
			for k := 0; k < 50; k++ {
				ctxv := uint32(i)<<17 | uint32(k)
				c.write(c.request(&memclnt.ControlPing{}, c.index, ctxv))
				data := c.read()
				if got := binary.BigEndian.Uint32(data[2:6]); got != ctxv {
					errs <- "context mismatch"
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	seen := map[uint32]bool{}
	for _, idx := range indexes {
		if idx == 0 || seen[idx] {
			t.Fatalf("client indexes not unique: %v", indexes)
		}
		seen[idx] = true
	}
	if got := s.MessageCount("control_ping"); got != n*50 {
		t.Fatalf("control_ping count = %d, want %d", got, n*50)
	}
}
