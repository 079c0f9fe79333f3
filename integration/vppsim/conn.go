package vppsim

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/codec"
)

// The API socket's connections: accept, read frames, dispatch each request
// to its handler, answer, deliver events.

func (s *Sim) acceptLoop(ln *net.UnixListener) {
	defer s.wg.Done()
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		s.mu.Lock()
		if !s.running || s.ln != ln {
			s.mu.Unlock()
			_ = conn.Close()
			return
		}
		c := &client{conn: conn, w: bufio.NewWriterSize(conn, 64<<10), table: s.table}
		s.clients[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// client is one API socket connection.
type client struct {
	conn       *net.UnixConn
	table      *msgTable // of the generation the client connected to
	index      uint32
	name       string
	registered bool
	wantEvents bool
	eventPID   uint32

	wmu sync.Mutex
	w   *bufio.Writer
}

// send writes already encoded messages; flush controls whether the buffer is
// flushed now.
func (c *client) send(msgs [][]byte, flush bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, m := range msgs {
		if err := writeFrame(c.w, m); err != nil {
			return err
		}
	}
	if flush {
		return c.w.Flush()
	}
	return nil
}

func (s *Sim) serve(c *client) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.clients, c)
		s.mu.Unlock()
		_ = c.conn.Close()
	}()
	r := bufio.NewReaderSize(c.conn, 64<<10)
	hdr := make([]byte, headerLen)
	for {
		msg, err := readFrame(r, hdr)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("vppsim: read", "client", c.index, "err", err)
			}
			return
		}
		out, closeAfter := s.handle(c, msg)
		// Batch replies of pipelined requests: flush once the client has
		// nothing more queued.
		flush := closeAfter || r.Buffered() == 0
		if err := c.send(out, flush); err != nil {
			return
		}
		if closeAfter {
			return
		}
	}
}

// handle processes one incoming message and returns the encoded answers.
func (s *Sim) handle(c *client, data []byte) (out [][]byte, closeAfter bool) {
	id := binary.BigEndian.Uint16(data[0:2])

	if id == sockclntCreateID {
		if _, ok := c.table.idOf[msgKey((*memclnt.SockclntCreate)(nil))]; ok {
			return s.sockclntCreate(c, data), false
		}
	}
	h, req, context := s.decodeRequest(c, id, data)
	if req == nil {
		return nil, false
	}
	name := h.req.GetMessageName()
	if crashesVPP(req) {
		// Real VPP 25.02 dies of this request (SIGSEGV) without an answer:
		// every client loses its connection and VPP comes back empty.
		s.log.Warn("vppsim: request crashes VPP 25.02: restarting empty", "msg", name)
		go func() { _ = s.Restart() }()
		return nil, true
	}
	s.delay(name)
	replies, events := s.call(c, h, req)

	if _, ok := req.(*memclnt.SockclntDelete); ok {
		closeAfter = true
	}
	out = s.encodeReplies(c, replies, context)
	if len(events) > 0 {
		s.deliverEvents(events)
	}
	return out, closeAfter
}

// decodeRequest finds the handler of message id, checks the sender is the
// registered client and decodes the request; a nil request means the
// message is dropped (logged), as VPP drops it.
func (s *Sim) decodeRequest(c *client, id uint16, data []byte) (*handler, api.Message, uint32) {
	t := c.table
	h := t.byID[id]
	if h == nil {
		name := t.names[id]
		s.log.Warn("vppsim: no handler for message, dropped", "id", id, "name", name, "client", c.index)
		return nil, nil, 0
	}
	if len(data) < 10 {
		s.log.Warn("vppsim: short request, dropped", "id", id, "len", len(data))
		return nil, nil, 0
	}
	clientIndex := binary.BigEndian.Uint32(data[2:6])
	context := binary.BigEndian.Uint32(data[6:10])
	s.mu.Lock()
	registered := c.registered
	s.mu.Unlock()
	if !registered || clientIndex != c.index {
		// VPP looks the registration up by client_index and drops the
		// message when there is none.
		s.log.Warn("vppsim: message from unregistered client index, dropped",
			"msg", h.req.GetMessageName(), "clientIndex", clientIndex, "registered", registered, "expected", c.index)
		return nil, nil, 0
	}
	req := h.newReq()
	if err := codec.DefaultCodec.DecodeMsg(data, req); err != nil {
		s.log.Warn("vppsim: cannot decode request, dropped", "msg", h.req.GetMessageName(), "err", err)
		return nil, nil, 0
	}
	return h, req, context
}

// delay sleeps the latency set for the message (or for all messages,
// whichever is longer).
func (s *Sim) delay(name string) {
	s.mu.Lock()
	d := s.latency[name]
	if all := s.latency[""]; all > d {
		d = all
	}
	s.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
}

// call counts the message and runs its handler, or answers an injected
// failure instead; it returns the replies and the events the call raised.
func (s *Sim) call(c *client, h *handler, req api.Message) ([]api.Message, []pendingEvent) {
	name := h.req.GetMessageName()
	var replies []api.Message
	var events []pendingEvent
	s.mu.Lock()
	s.counts[name]++
	if f := s.faults[name]; f != nil && f.remaining > 0 && h.newReply != nil {
		f.remaining--
		if f.remaining == 0 {
			delete(s.faults, name)
		}
		rep := h.newReply()
		setRetval(rep, f.retval)
		replies = []api.Message{rep}
		s.log.Info("vppsim: injected failure", "msg", name, "retval", f.retval)
	} else {
		replies = h.call(s, c, req)
		events = s.st.takeEvents()
	}
	s.mu.Unlock()
	return replies, events
}

// encodeReplies encodes the replies for client c with the request's
// context; a reply that cannot be encoded is logged and left out.
func (s *Sim) encodeReplies(c *client, replies []api.Message, context uint32) [][]byte {
	var out [][]byte
	for _, rep := range replies {
		rid, ok := c.table.idOf[msgKey(rep)]
		if !ok {
			s.log.Error("vppsim: reply not in message table", "reply", msgKey(rep))
			continue
		}
		b, err := encode(rep, rid, c.index, context)
		if err != nil {
			s.log.Error("vppsim: encode reply", "reply", msgKey(rep), "err", err)
			continue
		}
		out = append(out, b)
	}
	return out
}

// crashesVPP tells the requests that crash a real VPP 25.02: a memif in
// inject-punt mode (SIGSEGV in memif_delete_if on the "unsupported mode"
// path).
func crashesVPP(req api.Message) bool {
	switch r := req.(type) {
	case *memif.MemifCreate:
		return r.Mode == memif.MEMIF_MODE_API_PUNT_INJECT
	case *memif.MemifCreateV2:
		return r.Mode == memif.MEMIF_MODE_API_PUNT_INJECT
	}
	return false
}

// sockclntCreate answers the handshake. The request is decoded with GoVPP's
// type (a reply-shaped header: id, context); the reply carries the client
// index and the whole message table.
func (s *Sim) sockclntCreate(c *client, data []byte) [][]byte {
	req := new(memclnt.SockclntCreate)
	if err := codec.DefaultCodec.DecodeMsg(data, req); err != nil {
		s.log.Warn("vppsim: cannot decode sockclnt_create", "err", err)
		return nil
	}
	context := uint32(0)
	if len(data) >= 6 {
		context = binary.BigEndian.Uint32(data[2:6])
	}
	s.mu.Lock()
	if !c.registered {
		s.nextClient++
		c.index = s.nextClient
		c.registered = true
	}
	c.name = req.Name
	s.counts[req.GetMessageName()]++
	s.mu.Unlock()

	t := c.table
	reply := &memclnt.SockclntCreateReply{
		Response:     0,
		Index:        c.index,
		Count:        uint16(len(t.sorted)),
		MessageTable: t.sorted,
	}
	b, err := encode(reply, t.idOf[msgKey(reply)], 0, context)
	if err != nil {
		s.log.Error("vppsim: encode sockclnt_create_reply", "err", err)
		return nil
	}
	s.log.Debug("vppsim: client registered", "index", c.index, "name", req.Name)
	return [][]byte{b}
}

// deliverEvents sends interface events to every client that asked for them.
func (s *Sim) deliverEvents(events []pendingEvent) {
	s.mu.Lock()
	var targets []*client
	for cl := range s.clients {
		if cl.wantEvents {
			targets = append(targets, cl)
		}
	}
	s.mu.Unlock()
	for _, cl := range targets {
		var frames [][]byte
		for _, ev := range events {
			m := ev.toMsg(cl.eventPID)
			id, ok := cl.table.idOf[msgKey(m)]
			if !ok {
				continue
			}
			b, err := encode(m, id, cl.index, 0)
			if err != nil {
				continue
			}
			frames = append(frames, b)
		}
		if len(frames) > 0 {
			_ = cl.send(frames, true)
		}
	}
}
