package lite

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// State is what the caller knows of a key: its value (nil: absent) at a
// revision, typically read in the caller's own transaction. The zero State
// knows nothing.
type State struct {
	KV       *KV
	Revision int64
}

// errCompacted: etcd no longer has the history a watch asked for.
var errCompacted = errors.New("history compacted")

// WaitFor waits until cond accepts key's state and returns that state. It
// starts from at: cond sees at.KV, then every change after at.Revision,
// from one watch, with no read; with the zero State, or when etcd has
// compacted that history away, it reads the key and goes on from there.
// A broken watch (a member restarting) resumes after the last change seen.
// When cond fails or ctx ends, it returns the last state it saw with the
// error.
func (c *Client) WaitFor(ctx context.Context, key string, at State, cond func(kv *KV) (bool, error)) (*KV, error) {
	st := at
	b := newBackoff()
	for {
		var err error
		if st.Revision == 0 {
			st.KV, st.Revision, err = c.Get(ctx, key)
		}
		if err == nil {
			if done, cerr := cond(st.KV); cerr != nil || done {
				return st.KV, cerr
			}
			err = c.watchKey(ctx, key, &st, cond)
		}
		switch {
		case err == nil:
			return st.KV, nil
		case errors.Is(err, errCompacted):
			st.Revision = 0
			continue
		case ctx.Err() != nil:
			return st.KV, fmt.Errorf("waiting for %q (known up to revision %d): %w", key, st.Revision, ctx.Err())
		case !IsUnavailable(err):
			return st.KV, fmt.Errorf("waiting for %q: %w", key, err)
		}
		select {
		case <-ctx.Done():
			return st.KV, fmt.Errorf("waiting for %q (known up to revision %d): %w (after %v)", key, st.Revision, ctx.Err(), err)
		case <-time.After(b.NextBackOff()):
		}
	}
}

// errSatisfied ends a watch once cond accepted a state.
var errSatisfied = errors.New("condition satisfied")

// watchKey watches key from st.Revision+1, updating st with every change,
// until cond accepts one (nil) or fails (its error), or the watch ends.
func (c *Client) watchKey(ctx context.Context, key string, st *State, cond func(kv *KV) (bool, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := c.openWatch(ctx, key, st.Revision+1)
	if err != nil {
		return err
	}
	defer w.close()
	for {
		resp, err := w.next()
		if err != nil {
			return err
		}
		for _, ev := range resp.events {
			st.KV, st.Revision = ev.kv, ev.rev
			if done, err := cond(st.KV); err != nil || done {
				return err
			}
		}
		// A watch that is current has seen everything up to its header's
		// revision, changes to other keys included.
		st.Revision = max(st.Revision, resp.revision)
	}
}

// watchStream is one gRPC Watch call carrying one watcher.
type watchStream struct {
	url  string
	resp *http.Response
}

func (w *watchStream) close() { w.resp.Body.Close() }

// event is a change of the watched key: its state after the change (nil:
// deleted) and the change's revision.
type event struct {
	kv  *KV
	rev int64
}

type watchResponse struct {
	revision int64
	events   []event
}

// openWatch starts a Watch call on the endpoint that answered last (or
// the next that does) and creates a watcher of key from revision start
// (WatchRequest's create_request 1: key 1, start_revision 3). The call
// demands a leader (hasleader), so a member cut off from the cluster fails
// it rather than leave it silent. It ends with ctx.
func (c *Client) openWatch(ctx context.Context, key string, start int64) (*watchStream, error) {
	var w *watchStream
	err := c.onEndpoints(ctx, func(url string) (err error) {
		w, err = c.openWatchOn(ctx, url, key, start)
		return err
	})
	return w, err
}

func (c *Client) openWatchOn(ctx context.Context, url, key string, start int64) (*watchStream, error) {
	pr, pw := io.Pipe()
	req, err := c.newRequest(ctx, url, "Watch/Watch", pr, true)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Hasleader", "true")
	create := frame(pb(nil).msg(1, pb(nil).str(1, key).int(3, start)))
	// The request body streams: etcd answers the create request, and its
	// response headers come with that answer, so the request is written
	// while RoundTrip waits for them. Closing the body when ctx ends ends
	// the call.
	go func() {
		if _, err := pw.Write(create); err == nil {
			<-ctx.Done()
		}
		pw.Close()
	}()
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return nil, transportErr(url, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Grpc-Status") != "" {
		resp.Body.Close()
		return nil, grpcStatus(resp)
	}
	return &watchStream{url: url, resp: resp}, nil
}

// next reads the next WatchResponse (header 1, canceled 4,
// compact_revision 5, cancel_reason 6, events 11: type 1, kv 2).
func (w *watchStream) next() (*watchResponse, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(w.resp.Body, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			if st := grpcStatus(w.resp); st != nil {
				return nil, st
			}
			err = errors.New("watch ended by etcd")
		}
		return nil, transportErr(w.url, err)
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if hdr[0] != 0 || n > maxMessage {
		return nil, fmt.Errorf("etcd at %s sent a watch message of %d bytes (flags %d)", w.url, n, hdr[0])
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(w.resp.Body, msg); err != nil {
		return nil, transportErr(w.url, err)
	}
	var (
		r        watchResponse
		canceled bool
		compact  int64
		reason   string
	)
	err := fields(msg, func(f int, v uint64, b []byte) error {
		var err error
		switch f {
		case 1:
			r.revision, err = headerRevision(b)
		case 4:
			canceled = v != 0
		case 5:
			compact = int64(v)
		case 6:
			reason = string(b)
		case 11:
			var ev event
			ev, err = decodeEvent(b)
			r.events = append(r.events, ev)
		}
		return err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("decoding etcd's watch response: %w", err)
	case compact != 0:
		return nil, fmt.Errorf("watch of etcd at %s (compacted up to revision %d): %w", w.url, compact, errCompacted)
	case canceled:
		// etcd gives the reason as a gRPC status printed ("rpc error:
		// code = PermissionDenied desc = etcdserver: permission denied").
		if _, desc, ok := strings.Cut(reason, " desc = "); ok {
			reason = desc
		}
		code := codeUnknown
		if reason == msgPermissionDenied {
			code = codePermissionDenied
		}
		return nil, &Error{Code: code, Message: reason}
	}
	return &r, nil
}

// decodeEvent reads an mvccpb Event: type 1 (0 put, 1 delete), kv 2.
func decodeEvent(b []byte) (event, error) {
	var (
		ev  event
		del bool
		kv  KV
	)
	err := fields(b, func(f int, v uint64, b []byte) error {
		var err error
		switch f {
		case 1:
			del = v == 1
		case 2:
			kv, err = decodeKV(b)
		}
		return err
	})
	ev.rev = kv.ModRevision
	if !del {
		ev.kv = &kv
	}
	return ev, err
}
