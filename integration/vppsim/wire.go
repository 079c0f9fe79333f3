package vppsim

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"reflect"
	"sort"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/codec"
)

const (
	// headerLen is the size of VPP's msgbuf_t header that precedes every
	// message on the API socket: u64 q, u32 data_len (big-endian), u32
	// gc_mark_timestamp.
	headerLen = 16
	// sockclntCreateID is the message id GoVPP (and VPP's own socket clients)
	// hard-code for sockclnt_create, before any message table is known.
	sockclntCreateID = 15
	// maxMsgLen bounds one incoming payload; VPP's own limit is far lower for
	// the requests we implement.
	maxMsgLen = 16 << 20
)

// msgKey returns the message-table name of m: "<name>_<crc>".
func msgKey(m api.Message) string { return m.GetMessageName() + "_" + m.GetCrcString() }

// handler implements one request message.
type handler struct {
	req     api.Message // prototype of the request
	reply   api.Message // prototype of the reply (nil for dumps)
	details api.Message // prototype of the details message (dumps only)
	newReq  func() api.Message
	// newReply returns a fresh reply, used to answer injected faults.
	newReply func() api.Message
	call     func(s *Sim, c *client, req api.Message) []api.Message
}

// onRequest registers a request/reply handler; the type parameters are
// inferred from fn.
func onRequest[Q any, PQ interface {
	*Q
	api.Message
}, R any, PR interface {
	*R
	api.Message
}](fn func(s *Sim, c *client, req PQ) PR) *handler {
	return &handler{
		req:      PQ(new(Q)),
		reply:    PR(new(R)),
		newReq:   func() api.Message { return PQ(new(Q)) },
		newReply: func() api.Message { return PR(new(R)) },
		call: func(s *Sim, c *client, m api.Message) []api.Message {
			return []api.Message{fn(s, c, m.(PQ))}
		},
	}
}

// onDump registers a dump handler answering with details messages.
func onDump[Q any, PQ interface {
	*Q
	api.Message
}, D any, PD interface {
	*D
	api.Message
}](fn func(s *Sim, c *client, req PQ) []PD) *handler {
	return &handler{
		req:     PQ(new(Q)),
		details: PD(new(D)),
		newReq:  func() api.Message { return PQ(new(Q)) },
		call: func(s *Sim, c *client, m api.Message) []api.Message {
			ds := fn(s, c, m.(PQ))
			out := make([]api.Message, len(ds))
			for i, d := range ds {
				out[i] = d
			}
			return out
		},
	}
}

// msgTable is the message table of one simulator generation: ids are
// assigned by the simulator (like VPP assigns them at start-up, plugin by
// plugin) and change from one generation to the next.
type msgTable struct {
	byID   map[uint16]*handler // requests only
	idOf   map[string]uint16   // every listed message by name_crc
	names  map[uint16]string   // id -> name_crc
	sorted []memclnt.MessageTableEntry
}

// newMsgTable lays out the ids. sockclnt_create keeps id 15 (GoVPP
// hard-codes it); memclnt messages get small ids like in VPP; the others
// start at a base that moves with the generation so that clients that cache
// ids across a restart are caught.
func newMsgTable(handlers []*handler, generation int, exclude map[string]bool) *msgTable {
	t := &msgTable{
		byID:  map[uint16]*handler{},
		idOf:  map[string]uint16{},
		names: map[uint16]string{},
	}
	add := func(m api.Message, id uint16) {
		k := msgKey(m)
		if exclude[k] || exclude[m.GetMessageName()] {
			return
		}
		if _, dup := t.idOf[k]; dup {
			return
		}
		t.idOf[k] = id
		t.names[id] = k
	}
	// memclnt block, fixed like VPP's: ids 1.. with sockclnt_create at 15.
	memclntIDs := []struct {
		m  api.Message
		id uint16
	}{
		{(*memclnt.ControlPing)(nil), 11},
		{(*memclnt.ControlPingReply)(nil), 12},
		{(*memclnt.SockclntCreate)(nil), sockclntCreateID},
		{(*memclnt.SockclntCreateReply)(nil), 16},
		{(*memclnt.SockclntDelete)(nil), 17},
		{(*memclnt.SockclntDeleteReply)(nil), 18},
	}
	for _, e := range memclntIDs {
		add(e.m, e.id)
	}
	next := uint16(100 + 37*((generation-1)%5))
	for _, h := range handlers {
		for _, m := range []api.Message{h.req, h.reply, h.details} {
			if m == nil {
				continue
			}
			if _, ok := t.idOf[msgKey(m)]; ok {
				continue
			}
			add(m, next)
			next++
		}
	}
	for _, h := range handlers {
		if id, ok := t.idOf[msgKey(h.req)]; ok {
			t.byID[id] = h
		}
	}
	for id, name := range t.names {
		t.sorted = append(t.sorted, memclnt.MessageTableEntry{Index: id, Name: name})
	}
	sort.Slice(t.sorted, func(i, j int) bool { return t.sorted[i].Index < t.sorted[j].Index })
	return t
}

// readFrame reads one framed message. Only bytes 8..11 of the header are
// interpreted.
func readFrame(r *bufio.Reader, hdr []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, hdr[:headerLen]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[8:12])
	if n < 2 || n > maxMsgLen {
		return nil, fmt.Errorf("invalid message length %d", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// writeFrame writes one framed message (header zeroed except the length).
func writeFrame(w io.Writer, payload []byte) error {
	var hdr [headerLen]byte
	binary.BigEndian.PutUint32(hdr[8:12], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// encode encodes m with id and writes the header fields the message type
// carries: replies and details get the request's context, request-type
// messages (sockclnt_create_reply is one) the client index and context,
// events the client index.
func encode(m api.Message, id uint16, clientIndex, context uint32) ([]byte, error) {
	data, err := codec.DefaultCodec.EncodeMsg(m, id)
	if err != nil {
		return nil, err
	}
	switch m.GetMessageType() {
	case api.ReplyMessage:
		binary.BigEndian.PutUint32(data[2:6], context)
	case api.RequestMessage:
		binary.BigEndian.PutUint32(data[2:6], clientIndex)
		binary.BigEndian.PutUint32(data[6:10], context)
	case api.EventMessage:
		binary.BigEndian.PutUint32(data[2:6], clientIndex)
	}
	return data, nil
}

// setRetval sets the Retval field of a reply; it reports whether the reply
// has one.
func setRetval(m api.Message, retval int32) bool {
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return false
	}
	f := v.Elem().FieldByName("Retval")
	if !f.IsValid() || f.Kind() != reflect.Int32 || !f.CanSet() {
		return false
	}
	f.SetInt(int64(retval))
	return true
}

// hasRetval reports whether reply prototype m has an int32 Retval field.
func hasRetval(m api.Message) bool {
	if m == nil {
		return false
	}
	t := reflect.TypeOf(m)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	f, ok := t.FieldByName("Retval")
	return ok && f.Type.Kind() == reflect.Int32
}
