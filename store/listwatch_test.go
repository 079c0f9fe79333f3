package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/tests/v3/framework/integration"
)

// One list-watch through member 0 lives through the whole test, so every
// disruption below also proves the ones before it left it intact. Writes go
// through member 1.
func TestListWatch(t *testing.T) {
	integration.BeforeTest(t)
	clus := integration.NewCluster(t, &integration.ClusterConfig{
		Size:      3,
		UseBridge: true,
		// Frequent enough to observe while idle, rare enough not to flood.
		WatchProgressNotifyInterval: 200 * time.Millisecond,
	})
	defer clus.Terminate(t)
	watching, writer := New(clus.Client(0)), clus.Client(1)
	ctx := context.Background()

	mustPut(t, writer, "lw/a", "1")
	mustPut(t, writer, "lw/b", "1")
	mustPut(t, writer, "lx/outside", "1")
	listRev := mustPut(t, writer, "lw", "not under lw/")

	s := startListWatch(watching, "lw/")
	defer s.stop(t)

	t.Run("starts with a sync of the prefix", func(t *testing.T) {
		ev := s.expect(t, "sync lw/a=1 lw/b=1")[0]
		if ev.Revision != listRev {
			t.Fatalf("sync at revision %d, want %d", ev.Revision, listRev)
		}
	})

	t.Run("puts and deletes in order with revisions and previous values", func(t *testing.T) {
		r1 := mustPut(t, writer, "lw/c", "1")
		resp, err := writer.Txn(ctx).Then(clientv3.OpPut("lw/a", "2"), clientv3.OpDelete("lw/b"), clientv3.OpPut("lx/y", "1")).Commit()
		if err != nil {
			t.Fatal(err)
		}
		r2 := resp.Header.Revision
		if _, err := writer.Delete(ctx, "lw/never"); err != nil {
			t.Fatal(err)
		}
		r3 := mustPut(t, writer, "lw/c", "2")
		evs := s.expect(t, "put lw/c=1", "put lw/a=2", "delete lw/b", "put lw/c=2")
		for i, want := range []struct {
			rev  int64
			prev string
		}{{r1, ""}, {r2, "1"}, {r2, "1"}, {r3, "1"}} {
			ev := evs[i]
			if ev.Revision != want.rev || ev.KV.ModRevision != want.rev {
				t.Errorf("%s at revision %d (kv %d), want %d", fmtEvent(ev), ev.Revision, ev.KV.ModRevision, want.rev)
			}
			if (want.prev == "") != (ev.PrevKV == nil) || (ev.PrevKV != nil && string(ev.PrevKV.Value) != want.prev) {
				t.Errorf("%s: previous value %+v, want %q", fmtEvent(ev), ev.PrevKV, want.prev)
			}
		}
		if evs[0].KV.CreateRevision != r1 || evs[3].KV.CreateRevision != r1 {
			t.Errorf("lw/c create revisions %d, %d; want %d", evs[0].KV.CreateRevision, evs[3].KV.CreateRevision, r1)
		}
		if evs[0].KV.Version != 1 || evs[3].KV.Version != 2 {
			t.Errorf("lw/c versions %d, %d; want 1, 2", evs[0].KV.Version, evs[3].KV.Version)
		}
		// The transaction's two events in the prefix: the first says the
		// second follows.
		for i, more := range []bool{false, true, false, false} {
			if evs[i].More != more {
				t.Errorf("%s: More %v, want %v", fmtEvent(evs[i]), evs[i].More, more)
			}
		}
	})

	t.Run("progress while idle reports the current revision", func(t *testing.T) {
		// A write outside the prefix moves the revision without an event;
		// only progress can tell the watcher it is current.
		rev := mustPut(t, writer, "lx/idle", "1")
		for {
			ev := s.next(t)
			if ev.Type != Progress {
				t.Fatalf("idle watcher got %s", fmtEvent(ev))
			}
			if ev.Revision >= rev {
				break
			}
		}
		s.matchesTruth(t, watching, "lw/")
	})

	t.Run("dropped connections lose and repeat nothing", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 60 {
				create(t, writer, fmt.Sprintf("lw/drop-%02d", i), "v")
			}
		}()
		for range 6 {
			time.Sleep(15 * time.Millisecond)
			clus.Members[0].Bridge().DropConnections()
		}
		<-done
		s.expect(t, seq("put lw/drop-%02d=v", 0, 60)...)
		s.matchesTruth(t, watching, "lw/")
	})

	t.Run("restart of the watched member loses and repeats nothing", func(t *testing.T) {
		create(t, writer, "lw/restart-00", "v")
		clus.Members[0].Stop(t)
		clus.WaitMembersForLeader(t, clus.Members[1:])
		for i := 1; i < 20; i++ {
			create(t, writer, fmt.Sprintf("lw/restart-%02d", i), "v")
		}
		if err := clus.Members[0].Restart(t); err != nil {
			t.Fatal(err)
		}
		for i := 20; i < 25; i++ {
			create(t, writer, fmt.Sprintf("lw/restart-%02d", i), "v")
		}
		s.expect(t, seq("put lw/restart-%02d=v", 0, 25)...)
		s.matchesTruth(t, watching, "lw/")
	})

	t.Run("partition of the watched member loses and repeats nothing", func(t *testing.T) {
		clus.WaitLeader(t)
		clus.Members[0].InjectPartition(t, clus.Members[1:]...)
		// Only once member 0 has given up on a leader and dropped the
		// watch (it demands one) does this test the list-watch's own
		// resume rather than the etcd client's reconnect.
		eventually(t, "member 0 drops the watch for lack of a leader", func() bool {
			n, err := clus.Members[0].Metric("etcd_debugging_mvcc_watch_stream_total")
			return err == nil && n == "0"
		})
		clus.WaitMembersForLeader(t, clus.Members[1:])
		for i := range 10 {
			create(t, writer, fmt.Sprintf("lw/part-%02d", i), "v")
		}
		clus.Members[0].RecoverPartition(t, clus.Members[1:]...)
		clus.WaitLeader(t)
		for i := 10; i < 15; i++ {
			create(t, writer, fmt.Sprintf("lw/part-%02d", i), "v")
		}
		s.expect(t, seq("put lw/part-%02d=v", 0, 15)...)
		s.matchesTruth(t, watching, "lw/")
	})

	t.Run("compaction while the watched member is down ends in the true state", func(t *testing.T) {
		syncs := s.syncs
		clus.Members[0].Stop(t)
		clus.WaitMembersForLeader(t, clus.Members[1:])
		for i := range 5 {
			create(t, writer, fmt.Sprintf("lw/compact-%02d", i), "v")
		}
		if _, err := writer.Delete(ctx, "lw/drop-", clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
		rev := mustPut(t, writer, "lw/a", "3")
		if _, err := writer.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
			t.Fatal(err)
		}
		if err := clus.Members[0].Restart(t); err != nil {
			t.Fatal(err)
		}
		marker := create(t, writer, "lw/marker", "v")
		// The restarted member either replays the changes before it
		// applies the compaction, or the watcher finds them compacted and
		// resyncs; both must end in etcd's state.
		for s.rev < marker {
			s.next(t)
		}
		s.matchesTruth(t, watching, "lw/")
		t.Logf("resyncs: %d", s.syncs-syncs)
	})

	t.Run("handler error ends the list-watch with that error", func(t *testing.T) {
		boom := errors.New("boom")
		err := watching.ListWatch(ctx, "lw/", func(ev Event) error {
			if ev.Type == Sync {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), `handling sync of "lw/"`) {
			t.Fatalf("ListWatch returned %v", err)
		}
	})
}

// A watcher that stopped (consumer gone, watch canceled) and resumes after
// etcd compacted the revisions it missed must resync: a Sync carrying
// exactly what etcd holds, then changes as usual.
func TestListWatchResumeAfterCompaction(t *testing.T) {
	integration.BeforeTest(t)
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 3})
	defer clus.Terminate(t)
	c, writer := New(clus.Client(0)), clus.Client(1)
	ctx := context.Background()

	mustPut(t, writer, "cp/a", "1")
	s := newStream()
	w := &watcher{c: c, key: "cp/", end: clientv3.GetPrefixRangeEnd("cp/"), handler: s.handle}
	var stop func()
	run := func() {
		rctx, cancel := context.WithCancel(ctx)
		go func() { s.errc <- w.run(rctx) }()
		stop = func() {
			cancel()
			if err := <-s.errc; !errors.Is(err, context.Canceled) {
				t.Errorf("run ended with %v", err)
			}
			stop = nil
		}
	}
	defer func() {
		if stop != nil {
			stop()
		}
	}()

	run()
	s.expect(t, "sync cp/a=1")
	mustPut(t, writer, "cp/b", "1")
	s.expect(t, "put cp/b=1")
	stop()
	stoppedAt := w.rev

	mustPut(t, writer, "cp/c", "1")
	if _, err := writer.Delete(ctx, "cp/a"); err != nil {
		t.Fatal(err)
	}
	rev := mustPut(t, writer, "cp/b", "2")
	if _, err := writer.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if stoppedAt >= rev {
		t.Fatalf("watcher stopped at %d, not before the compaction at %d", stoppedAt, rev)
	}

	run()
	ev := s.expect(t, "sync cp/b=2 cp/c=1")[0]
	if ev.Revision < rev {
		t.Fatalf("resync at revision %d, before the compaction at %d", ev.Revision, rev)
	}
	s.matchesTruth(t, c, "cp/")
	mustPut(t, writer, "cp/d", "1")
	s.expect(t, "put cp/d=1")

	// Resuming when nothing was compacted continues without a resync.
	stop()
	mustPut(t, writer, "cp/e", "1")
	run()
	s.expect(t, "put cp/e=1")
}

// Current tells how far behind etcd an event was delivered: a watcher that
// catches up on history (here: changes made while its handler was still
// busy with the sync) sees events older than etcd's revision, then level.
func TestListWatchCurrentShowsLag(t *testing.T) {
	integration.BeforeTest(t)
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 1})
	defer clus.Terminate(t)
	c, writer := New(clus.Client(0)), clus.Client(0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	synced, release := make(chan struct{}), make(chan struct{})
	events := make(chan Event, 100)
	go func() {
		_ = c.ListWatch(ctx, "lag/", func(ev Event) error {
			if ev.Type == Sync {
				close(synced)
				<-release
				return nil
			}
			events <- ev
			return nil
		})
	}()
	<-synced
	var last int64
	for i := range 20 {
		last = mustPut(t, writer, fmt.Sprintf("lag/%02d", i), "x")
	}
	close(release)
	var maxLag int64
	for range 20 {
		select {
		case ev := <-events:
			maxLag = max(maxLag, ev.Current-ev.Revision)
			if ev.Revision == last && ev.Current != last {
				t.Errorf("last event at %d reports etcd at %d", ev.Revision, ev.Current)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("events did not arrive")
		}
	}
	if maxLag == 0 {
		t.Error("a watcher catching up on 20 revisions never saw itself behind")
	}
}
