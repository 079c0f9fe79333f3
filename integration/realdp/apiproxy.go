package realdp

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// APIProxy sits between a client and a VPP binary-API socket and counts
// the requests clients send, by message name. It reads the framing GoVPP
// and VPP use (16-byte header, payload length big-endian in bytes 8..11,
// message id in the payload's first two bytes) and learns id -> name from
// the sockclnt_create_reply message table of each connection, so it counts
// real VPP's ids, whatever they are after a restart.
type APIProxy struct {
	Socket string
	target string
	ln     net.Listener

	mu     sync.Mutex
	counts map[string]int
}

// StartAPIProxy listens on a new socket and relays every connection to
// target. The test's cleanup closes it.
func StartAPIProxy(t testing.TB, target string) *APIProxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "uprx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return ListenAPIProxy(t, filepath.Join(dir, "api.sock"), target)
}

// ListenAPIProxy is StartAPIProxy on a given socket path, for clients that
// expect VPP's socket at a fixed place (a Kubernetes node's /run/vpp).
// The test's cleanup closes it and removes the socket.
func ListenAPIProxy(t testing.TB, socket, target string) *APIProxy {
	t.Helper()
	p := &APIProxy{Socket: socket, target: target, counts: map[string]int{}}
	var err error
	p.ln, err = net.Listen("unix", p.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.ln.Close() })
	go p.serve()
	return p
}

func (p *APIProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.relay(c)
	}
}

// conn is one relayed connection: the id -> name table the server sent.
type conn struct {
	mu    sync.Mutex
	names map[uint16]string
	ready chan struct{}
}

func (p *APIProxy) relay(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("unix", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	cn := &conn{names: map[uint16]string{}, ready: make(chan struct{})}
	go func() {
		p.fromServer(server, client, cn)
		client.Close()
	}()
	p.fromClient(client, server, cn)
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	payload := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, err
	}
	return append(hdr[:], payload...), nil
}

// fromServer relays answers; the first is sockclnt_create_reply, whose
// message table names every id.
func (p *APIProxy) fromServer(server, client net.Conn, cn *conn) {
	first := true
	for {
		f, err := readFrame(server)
		if err != nil {
			if first {
				close(cn.ready)
			}
			return
		}
		if first {
			cn.names = parseTable(f[16:])
			close(cn.ready)
			first = false
		}
		if _, err := client.Write(f); err != nil {
			return
		}
	}
}

// parseTable reads sockclnt_create_reply: request-type header (10 bytes),
// response i32, index u32, count u16, then count {index u16, name [64]}.
func parseTable(b []byte) map[uint16]string {
	names := map[uint16]string{}
	if len(b) < 20 {
		return names
	}
	n := int(binary.BigEndian.Uint16(b[18:20]))
	b = b[20:]
	for i := 0; i < n && len(b) >= 66; i++ {
		id := binary.BigEndian.Uint16(b[0:2])
		name := string(bytes.TrimRight(b[2:66], "\x00"))
		if j := strings.LastIndexByte(name, '_'); j > 0 {
			name = name[:j] // drop the CRC
		}
		names[id] = name
		b = b[66:]
	}
	return names
}

func (p *APIProxy) fromClient(client, server net.Conn, cn *conn) {
	first := true
	for {
		f, err := readFrame(client)
		if err != nil {
			return
		}
		if _, err := server.Write(f); err != nil {
			return
		}
		if first { // sockclnt_create, sent before the table is known
			first = false
			p.count("sockclnt_create")
			continue
		}
		<-cn.ready
		name := "unknown"
		if len(f) >= 18 {
			if n, ok := cn.names[binary.BigEndian.Uint16(f[16:18])]; ok {
				name = n
			}
		}
		p.count(name)
	}
}

func (p *APIProxy) count(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[name]++
}

// Counts are the requests relayed so far, by message name (no CRC).
func (p *APIProxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		m[k] = v
	}
	return m
}

// Writes are the counted requests that may change VPP's state: everything
// but dumps, pings, show_* queries, event subscriptions and the socket
// client's own handshake.
func (p *APIProxy) Writes() map[string]int {
	w := map[string]int{}
	for name, n := range p.Counts() {
		if ReadOnly(name) {
			continue
		}
		w[name] = n
	}
	return w
}

// ReadOnly tells a request (by message name, without CRC) that changes
// nothing in VPP.
func ReadOnly(name string) bool {
	switch {
	case strings.HasSuffix(name, "_dump"), strings.HasPrefix(name, "show_"),
		strings.HasPrefix(name, "want_"), strings.HasPrefix(name, "sockclnt_"),
		strings.HasPrefix(name, "control_ping"), name == "get_first_msg_id":
		return true
	}
	return false
}
