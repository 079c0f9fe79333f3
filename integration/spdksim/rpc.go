package spdksim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

type rpcConn struct {
	c         net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func (rc *rpcConn) close() {
	rc.closeOnce.Do(func() {
		close(rc.done)
		rc.c.Close()
	})
}

func (s *Sim) acceptLoop(ln *net.UnixListener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		rc := &rpcConn{c: c, done: make(chan struct{})}
		s.mu.Lock()
		if s.closed || s.ln != ln {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[rc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(rc)
	}
}

func (s *Sim) serve(rc *rpcConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, rc)
		s.mu.Unlock()
		rc.close()
	}()
	dec := json.NewDecoder(rc.c)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			// Unparseable input: v24.09 closes the connection without a
			// reply (measured; a JSON stream has no resync point).
			return
		}
		before := s.stateVersion()
		resp, keep := s.handle(rc, raw)
		if resp != nil {
			if !s.write(rc, resp) {
				return
			}
		}
		if s.stateVersion() != before {
			s.stateChanged()
		}
		if !keep {
			return
		}
	}
}

func (s *Sim) write(rc *rpcConn, resp []byte) bool {
	_, err := rc.c.Write(append(resp, '\n'))
	return err == nil
}

// JSON-RPC error codes (include/spdk/jsonrpc.h).
const (
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternalError  = -32603
)

var nullID = json.RawMessage("null")

// rpcError is an error reply.
type rpcError struct {
	code int
	msg  string
}

func errorResponse(id json.RawMessage, code int, msg string) []byte {
	m, _ := json.Marshal(msg)
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(id)
	fmt.Fprintf(&b, `,"error":{"code":%d,"message":%s}}`, code, m)
	return b.Bytes()
}

func resultResponse(id json.RawMessage, result any) []byte {
	r, err := json.Marshal(result)
	if err != nil {
		return errorResponse(id, codeInternalError, "Internal error")
	}
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(id)
	b.WriteString(`,"result":`)
	b.Write(r)
	b.WriteByte('}')
	return b.Bytes()
}

const maxIDLen = 128 // SPDK_JSONRPC_ID_MAX_LEN

// handle processes one top-level JSON value and returns the reply (nil for
// none) and whether to keep the connection open.
// request is one JSON-RPC request as parseRequest accepted it.
type request struct {
	method string
	id     json.RawMessage // nil: a notification
	params json.RawMessage // nil: none
}

// replyID is the id an error reply carries: null for a notification.
func (r request) replyID() json.RawMessage {
	if r.id == nil {
		return nullID
	}
	return r.id
}

// parseRequest checks raw as v24.09's lib/jsonrpc does; a request it
// refuses comes back as the error reply to send instead.
func parseRequest(raw json.RawMessage) (request, []byte) {
	if jsonType(raw) != '{' {
		// Batches are not supported; scalars are not requests.
		return request{}, errorResponse(nullID, codeInvalidRequest, "Invalid request")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return request{}, errorResponse(nullID, codeInvalidRequest, "Invalid request")
	}
	invalid := false
	for k := range obj {
		switch k {
		case "jsonrpc", "method", "params", "id":
		default:
			// spdk_json_decode_object is strict: the request is invalid and
			// its id is never captured.
			return request{}, errorResponse(nullID, codeInvalidRequest, "Invalid request")
		}
	}
	// A missing "jsonrpc" is accepted (v24.09 checks it only when present).
	if v, ok := obj["jsonrpc"]; ok && (jsonType(v) != '"' || !bytes.Equal(bytes.TrimSpace(v), []byte(`"2.0"`))) {
		// v24.09 rejects a wrong version, and a missing or non-string
		// method, before it reads the id (measured).
		return request{}, errorResponse(nullID, codeInvalidRequest, "Invalid request")
	}
	var method string
	if v, ok := obj["method"]; !ok || jsonType(v) != '"' || json.Unmarshal(v, &method) != nil {
		return request{}, errorResponse(nullID, codeInvalidRequest, "Invalid request")
	}
	id := json.RawMessage(nil) // nil: notification
	if v, ok := obj["id"]; ok {
		switch jsonType(v) {
		case '"', '0':
			var buf bytes.Buffer
			if json.Compact(&buf, v) == nil && buf.Len() <= maxIDLen {
				id = buf.Bytes()
			} else {
				invalid = true
			}
		case 'n':
			id = nullID
		default:
			invalid = true
		}
	}
	params, hasParams := obj["params"]
	if hasParams && jsonType(params) == 'n' {
		// "params": null is no params to v24.09 (measured).
		hasParams = false
	}
	if hasParams {
		if t := jsonType(params); t != '{' && t != '[' {
			invalid = true
		}
	} else {
		params = nil
	}
	req := request{method: method, id: id, params: params}
	if invalid {
		return request{}, errorResponse(req.replyID(), codeInvalidRequest, "Invalid request")
	}
	return req, nil
}

func (s *Sim) handle(rc *rpcConn, raw json.RawMessage) ([]byte, bool) {
	req, refused := parseRequest(raw)
	if refused != nil {
		return refused, true
	}
	method, params, replyID := req.method, req.params, req.replyID()
	s.mu.Lock()
	s.calls[method]++
	s.mu.Unlock()
	s.log.Debug("spdksim call", "method", method, "params", string(params))

	if d := s.latencyFor(method); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-rc.done:
			t.Stop()
			return nil, false
		}
	}
	if f := s.takeFault(method); f != nil {
		switch {
		case f.Drop && f.AfterApply:
			s.dispatch(rc, method, params)
			return nil, false
		case f.Drop:
			return nil, false
		default:
			return errorResponse(replyID, f.Code, f.Message), true
		}
	}
	result, rerr := s.dispatch(rc, method, params)
	if rerr != nil {
		if rerr.code == 0 { // connection went away while waiting
			return nil, false
		}
		return errorResponse(replyID, rerr.code, rerr.msg), true
	}
	if req.id == nil {
		return nil, true // notification: no reply on success
	}
	return resultResponse(req.id, result), true
}

func (s *Sim) dispatch(rc *rpcConn, method string, params json.RawMessage) (any, *rpcError) {
	h, ok := handlers[method]
	if !ok {
		return nil, &rpcError{codeMethodNotFound, "Method not found"}
	}
	return h(s, rc, params)
}

// drain is used by vhost sockets: read and discard until EOF.
func drain(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
}
