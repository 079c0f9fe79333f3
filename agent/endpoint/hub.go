package endpoint

import (
	"sort"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/uspace-io/uspace/store"
)

// HistoryLimit bounds the events the hub keeps for watches that start
// behind it (a container agent lists at R, then watches from R+1 while the
// hub already delivered R+5). A watch that starts before the oldest kept
// event is answered as compacted, as etcd answers one that starts before
// its compaction, and client/v3's user lists again.
const HistoryLimit = 4096

// hub holds the recent history of the host's container intents, fed by
// the host agent's own list-watch of its host, and serves every
// endpoint's watches from it: etcd carries the host agent's one watch
// however many containers watch.
type hub struct {
	prefix string // events kept: under this prefix
	limit  int

	mu sync.Mutex
	// epoch counts the snapshots (Sync) of the host watch: a watch made
	// in an older epoch may have missed events the host watch missed
	// (compacted away in etcd), so it is answered as compacted.
	epoch uint64
	// start: every event after start is in events.
	start  int64
	rev    int64 // the newest revision whose every event is in events[:whole]
	events []*mvccpb.Event
	// whole counts the events watchers may see: a transaction's events
	// are shown together, once its last is in.
	whole int
	// changed is closed (and replaced) whenever rev, events or epoch change.
	changed chan struct{}
}

func newHub(prefix string, limit int) *hub {
	return &hub{prefix: prefix, limit: limit, changed: make(chan struct{})}
}

// observe takes one event of the host agent's list-watch, on its
// goroutine: it only appends and wakes the watchers.
func (h *hub) observe(ev store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch ev.Type {
	case store.Sync:
		h.epoch++
		h.start, h.rev, h.events, h.whole = ev.Revision, ev.Revision, nil, 0
	case store.Put, store.Delete:
		if strings.HasPrefix(ev.KV.Key, h.prefix) {
			h.events = append(h.events, toPB(ev))
		}
		if ev.More {
			return
		}
		h.whole = len(h.events)
		h.trim()
		h.rev = max(h.rev, ev.Revision)
	case store.Progress:
		h.rev = max(h.rev, ev.Revision)
	}
	close(h.changed)
	h.changed = make(chan struct{})
}

// trim drops the oldest half of the history once it is over its limit,
// never part of a revision. It runs when every event is whole.
func (h *hub) trim() {
	if len(h.events) <= h.limit {
		return
	}
	n := len(h.events) / 2
	last := h.events[n-1].Kv.ModRevision
	for n < len(h.events) && h.events[n].Kv.ModRevision == last {
		n++
	}
	h.start = last
	h.events = append([]*mvccpb.Event(nil), h.events[n:]...)
	h.whole = len(h.events)
}

// snapshot is what a watcher reads from the hub at one moment.
type snapshot struct {
	epoch   uint64
	start   int64
	rev     int64
	events  []*mvccpb.Event // every kept event, oldest first; read only
	changed <-chan struct{}
}

func (h *hub) snapshot() snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return snapshot{epoch: h.epoch, start: h.start, rev: h.rev, events: h.events[:h.whole], changed: h.changed}
}

// from returns the kept events at revision next and after.
func (s snapshot) from(next int64) []*mvccpb.Event {
	i := sort.Search(len(s.events), func(i int) bool { return s.events[i].Kv.ModRevision >= next })
	return s.events[i:]
}

func toPB(ev store.Event) *mvccpb.Event {
	out := &mvccpb.Event{Kv: kvPB(ev.KV)}
	if ev.Type == store.Delete {
		out.Type = mvccpb.DELETE
		out.Kv = &mvccpb.KeyValue{Key: []byte(ev.KV.Key), ModRevision: ev.KV.ModRevision}
	}
	if ev.PrevKV != nil {
		out.PrevKv = kvPB(*ev.PrevKV)
	}
	return out
}

func kvPB(kv store.KV) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(kv.Key), Value: kv.Value, ModRevision: kv.ModRevision,
		CreateRevision: kv.CreateRevision, Version: kv.Version, Lease: kv.Lease}
}
