package endpoint

import (
	"testing"

	"github.com/uspace-io/uspace/store"
)

func put(key string, rev int64, more bool) store.Event {
	return store.Event{Type: store.Put, Revision: rev, KV: store.KV{Key: key, ModRevision: rev}, More: more}
}

// A transaction's events are shown together, once its last is in; a
// history over its limit drops its oldest revisions whole and says from
// where it holds every event; a new snapshot of the host starts a new
// epoch.
func TestHubHistory(t *testing.T) {
	h := newHub("/c/", 4)
	h.observe(store.Event{Type: store.Sync, Revision: 10})
	h.observe(put("/c/a", 11, true))
	if s := h.snapshot(); len(s.events) != 0 || s.rev != 10 {
		t.Fatalf("half a transaction shown: %d events at %d", len(s.events), s.rev)
	}
	h.observe(put("/other", 11, true))
	h.observe(put("/c/b", 11, false))
	s := h.snapshot()
	if len(s.events) != 2 || s.rev != 11 || s.start != 10 {
		t.Fatalf("after the transaction: %d events at %d from %d, want its 2 at 11 from 10", len(s.events), s.rev, s.start)
	}
	for rev := int64(12); rev <= 14; rev++ {
		h.observe(put("/c/a", rev, false))
	}
	s = h.snapshot()
	if s.start != 11 || len(s.events) != 3 || s.events[0].Kv.ModRevision != 12 {
		t.Fatalf("trimmed history from %d with %d events (first %d), want from 11: 12, 13, 14", s.start, len(s.events), s.events[0].Kv.ModRevision)
	}
	if got := s.from(13); len(got) != 2 || got[0].Kv.ModRevision != 13 {
		t.Errorf("from 13: %d events", len(got))
	}
	h.observe(store.Event{Type: store.Sync, Revision: 20})
	if s2 := h.snapshot(); s2.epoch == s.epoch || len(s2.events) != 0 || s2.start != 20 {
		t.Errorf("after a new snapshot: epoch %d (was %d), %d events from %d", s2.epoch, s.epoch, len(s2.events), s2.start)
	}
}
