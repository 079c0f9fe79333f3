package endpoint

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ProgressInterval is how often a watch created with progress_notify
// that had nothing to deliver hears the revision it is current at:
// etcd's default (--experimental-watch-progress-notify-interval).
const ProgressInterval = 10 * time.Minute

// watcher is one watch of a stream.
type watcher struct {
	id       int64
	s        span
	next     int64 // the first revision not yet delivered
	epoch    uint64
	prevKV   bool
	noPut    bool
	noDelete bool
	progress bool
	quiet    bool // nothing sent since the last progress tick
}

// Watch serves one gRPC watch stream the way etcd's does (created,
// events in revision order, compaction, cancel, progress), its watches
// narrowed to the container's view and fed from the hub. One goroutine
// sends everything, so a watch's created response precedes its events
// and a progress response follows every event it covers.
func (e *endpoint) Watch(stream pb.Watch_WatchServer) error {
	ctx := stream.Context()
	reqs := make(chan *pb.WatchRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	ws := &watchStream{e: e, stream: stream, watchers: map[int64]*watcher{}}
	defer func() { e.watches.Add(-int64(len(ws.watchers))) }()
	tick := time.NewTicker(ProgressInterval)
	defer tick.Stop()
	for {
		snap := e.hub.snapshot()
		if err := ws.flush(snap); err != nil {
			return err
		}
		select {
		case r := <-reqs:
			if err := ws.handle(r, snap); err != nil {
				return err
			}
		case <-snap.changed:
		case <-tick.C:
			if err := ws.progressTick(snap); err != nil {
				return err
			}
		case err := <-recvErr:
			if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

type watchStream struct {
	e        *endpoint
	stream   pb.Watch_WatchServer
	watchers map[int64]*watcher
	nextID   int64
}

// drop forgets watch id.
func (ws *watchStream) drop(id int64) {
	delete(ws.watchers, id)
	ws.e.watches.Add(-1)
}

func (ws *watchStream) send(r *pb.WatchResponse) error { return ws.stream.Send(r) }

func (ws *watchStream) handle(r *pb.WatchRequest, snap snapshot) error {
	switch u := r.RequestUnion.(type) {
	case *pb.WatchRequest_CreateRequest:
		return ws.create(u.CreateRequest, snap)
	case *pb.WatchRequest_CancelRequest:
		id := u.CancelRequest.WatchId
		if _, ok := ws.watchers[id]; !ok {
			return nil
		}
		ws.drop(id)
		return ws.send(&pb.WatchResponse{Header: ws.e.header(snap.rev), WatchId: id, Canceled: true})
	case *pb.WatchRequest_ProgressRequest:
		// Every watcher is current with snap once flush returned.
		return ws.send(&pb.WatchResponse{Header: ws.e.header(snap.rev), WatchId: clientv3.InvalidWatchID})
	}
	return nil
}

func (ws *watchStream) create(c *pb.WatchCreateRequest, snap snapshot) error {
	refuse := func(reason string) error {
		return ws.send(&pb.WatchResponse{Header: ws.e.header(snap.rev), WatchId: clientv3.InvalidWatchID,
			Created: true, Canceled: true, CancelReason: reason})
	}
	if c.StartRevision < 0 {
		return refuse(rpctypes.ErrCompacted.Error())
	}
	s, ok := ws.e.view.watch(span{c.Key, c.RangeEnd})
	if !ok {
		return refuse(rpctypes.ErrGRPCPermissionDenied.Error())
	}
	id := c.WatchId
	if id == clientv3.AutoWatchID {
		// Never an ID this stream used before, as etcd: client/v3 cancels
		// the ID of a watch it has closed (a compacted one) when a
		// response for it comes, which would cancel its successor.
		for ws.watchers[ws.nextID] != nil {
			ws.nextID++
		}
		id = ws.nextID
		ws.nextID++
	} else if ws.watchers[id] != nil {
		return refuse("mvcc: duplicate watch ID provided")
	}
	w := &watcher{id: id, s: s, next: c.StartRevision, epoch: snap.epoch, prevKV: c.PrevKv, progress: c.ProgressNotify}
	if w.next == 0 {
		w.next = snap.rev + 1
	}
	for _, f := range c.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			w.noPut = true
		case pb.WatchCreateRequest_NODELETE:
			w.noDelete = true
		}
	}
	if ws.e.watches.Add(1) > MaxWatches {
		ws.e.watches.Add(-1)
		ws.e.refusedWatches.note()
		return refuse(ErrTooManyWatches)
	}
	ws.watchers[id] = w
	return ws.send(&pb.WatchResponse{Header: ws.e.header(snap.rev), WatchId: id, Created: true})
}

// flush sends every watcher what it has not had of snap, and answers as
// compacted the watchers snap no longer holds the history of.
func (ws *watchStream) flush(snap snapshot) error {
	for id, w := range ws.watchers {
		if w.epoch != snap.epoch || w.next <= snap.start {
			ws.drop(id)
			compact := snap.start + 1
			if err := ws.send(&pb.WatchResponse{Header: ws.e.header(snap.rev), WatchId: id, CompactRevision: compact, Canceled: true}); err != nil {
				return err
			}
			continue
		}
		if w.next > snap.rev {
			continue
		}
		var evs []*mvccpb.Event
		for _, ev := range snap.from(w.next) {
			if !w.wants(ev) {
				continue
			}
			if !w.prevKV && ev.PrevKv != nil {
				ev = &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
			}
			evs = append(evs, ev)
		}
		w.next = snap.rev + 1
		if len(evs) == 0 {
			continue
		}
		w.quiet = false
		if err := ws.send(&pb.WatchResponse{Header: ws.e.header(snap.rev), WatchId: id, Events: evs}); err != nil {
			return err
		}
	}
	return nil
}

func (w *watcher) wants(ev *mvccpb.Event) bool {
	k := ev.Kv.Key
	in := bytes.Compare(k, w.s.key) >= 0 && (w.s.toEnd() || bytes.Compare(k, w.s.end) < 0)
	if w.s.single() {
		in = bytes.Equal(k, w.s.key)
	}
	switch {
	case !in:
		return false
	case ev.Type == mvccpb.PUT:
		return !w.noPut
	default:
		return !w.noDelete
	}
}

// progressTick tells each quiet watcher that asked for progress
// notifications the revision it is current at, as etcd does.
func (ws *watchStream) progressTick(snap snapshot) error {
	for id, w := range ws.watchers {
		if w.progress && w.quiet {
			if err := ws.send(&pb.WatchResponse{Header: ws.e.header(snap.rev), WatchId: id}); err != nil {
				return err
			}
		}
		w.quiet = true
	}
	return nil
}
