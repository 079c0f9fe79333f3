package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const eventTimeout = 15 * time.Second

// create writes key once even when the call has to be retried across a
// disruption: a retried plain put could land twice and fake a duplicate
// event.
func create(t *testing.T, cli *clientv3.Client, key, val string) int64 {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, val)).
			Else(clientv3.OpGet(key)).Commit()
		cancel()
		if err == nil {
			if resp.Succeeded {
				return resp.Header.Revision
			}
			kv := resp.Responses[0].GetResponseRange().Kvs[0]
			if string(kv.Value) != val {
				t.Fatalf("create %s=%s: key already holds %q", key, val, kv.Value)
			}
			return kv.ModRevision
		}
		if time.Now().After(deadline) {
			t.Fatalf("create %s: %v", key, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustPut(t *testing.T, cli *clientv3.Client, key, val string) int64 {
	t.Helper()
	resp, err := cli.Put(context.Background(), key, val)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return resp.Header.Revision
}

func fmtEvent(ev Event) string {
	switch ev.Type {
	case Sync:
		parts := []string{"sync"}
		for _, kv := range ev.Snapshot {
			parts = append(parts, kv.Key+"="+string(kv.Value))
		}
		return strings.Join(parts, " ")
	case Put:
		return fmt.Sprintf("put %s=%s", ev.KV.Key, ev.KV.Value)
	case Delete:
		return "delete " + ev.KV.Key
	}
	return ev.Type.String()
}

func fmtKVs(kvs []KV) string {
	return fmtEvent(Event{Type: Sync, Snapshot: kvs})
}

// stream records what a list-watch delivers and checks, event by event,
// the ordering promises: revisions never go back, no change is delivered
// twice, nothing is delivered at or below a revision a Progress already
// vouched for.
type stream struct {
	events chan Event
	errc   chan error
	cancel context.CancelFunc

	rev         int64 // highest revision delivered
	progressRev int64 // highest revision vouched for by Progress
	atRev       map[string]bool
	model       map[string]string
	syncs       int
}

func newStream() *stream {
	return &stream{events: make(chan Event, 100000), errc: make(chan error, 1), atRev: map[string]bool{}, model: map[string]string{}}
}

func (s *stream) handle(ev Event) error {
	s.events <- ev
	return nil
}

func startListWatch(c *Client, prefix string) *stream {
	s := newStream()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.errc <- c.ListWatch(ctx, prefix, s.handle) }()
	return s
}

func (s *stream) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.errc:
		if err == nil || !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("ListWatch ended with %v, want context canceled", err)
		}
	case <-time.After(eventTimeout):
		t.Errorf("ListWatch did not end after cancel")
	}
}

func (s *stream) next(t *testing.T) Event {
	t.Helper()
	var ev Event
	select {
	case ev = <-s.events:
	case err := <-s.errc:
		t.Fatalf("ListWatch ended: %v", err)
	case <-time.After(eventTimeout):
		t.Fatalf("no event within %v (delivered up to revision %d)", eventTimeout, s.rev)
	}
	switch ev.Type {
	case Sync:
		if ev.Revision < s.rev {
			t.Fatalf("sync at revision %d after revision %d was delivered", ev.Revision, s.rev)
		}
		s.syncs++
		s.model = map[string]string{}
		for _, kv := range ev.Snapshot {
			s.model[kv.Key] = string(kv.Value)
		}
		s.rev, s.progressRev, s.atRev = ev.Revision, ev.Revision, map[string]bool{}
	case Put, Delete:
		if ev.Revision <= s.progressRev || ev.Revision < s.rev || (ev.Revision == s.rev && s.atRev[ev.KV.Key]) {
			t.Fatalf("%s at revision %d: out of order or duplicate (delivered up to %d, progress %d)", fmtEvent(ev), ev.Revision, s.rev, s.progressRev)
		}
		if ev.Revision > s.rev {
			s.rev, s.atRev = ev.Revision, map[string]bool{}
		}
		s.atRev[ev.KV.Key] = true
		if ev.Type == Put {
			s.model[ev.KV.Key] = string(ev.KV.Value)
		} else {
			delete(s.model, ev.KV.Key)
		}
	case Progress:
		if ev.Revision < s.rev {
			t.Fatalf("progress at %d after revision %d was delivered", ev.Revision, s.rev)
		}
		s.progressRev = ev.Revision
	}
	return ev
}

// expect consumes changes (skipping Progress) and wants exactly these.
func (s *stream) expect(t *testing.T, want ...string) []Event {
	t.Helper()
	var got []string
	var evs []Event
	for len(got) < len(want) {
		ev := s.next(t)
		if ev.Type == Progress {
			continue
		}
		got = append(got, fmtEvent(ev))
		evs = append(evs, ev)
		if !slices.Equal(got, want[:len(got)]) {
			t.Fatalf("delivered:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	return evs
}

// matchesTruth compares what the stream built from its events with what
// etcd holds now.
func (s *stream) matchesTruth(t *testing.T, c *Client, prefix string) {
	t.Helper()
	kvs, _, err := c.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, kv := range kvs {
		want[kv.Key] = string(kv.Value)
	}
	if fmt.Sprint(want) != fmt.Sprint(s.model) {
		t.Fatalf("state built from events:\n  %v\netcd holds:\n  %v", s.model, want)
	}
}

func seq(format string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(format, i))
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", eventTimeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
