package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// recordChanges watches etcd from now on and records every change of the
// given keys, until the test ends; the returned func lists them.
func recordChanges(t *testing.T, e *harness.Etcd, keys ...string) func() []string {
	t.Helper()
	var (
		mu   sync.Mutex
		seen []string
	)
	ctx, cancel := context.WithCancel(bg())
	synced := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Store.ListWatch(ctx, schema.Root, func(ev store.Event) error {
			switch ev.Type {
			case store.Sync:
				select {
				case <-synced:
				default:
					close(synced)
				}
			case store.Put, store.Delete:
				if slices.Contains(keys, ev.KV.Key) {
					mu.Lock()
					seen = append(seen, fmt.Sprintf("%s %s at revision %d", ev.Type, ev.KV.Key, ev.Revision))
					mu.Unlock()
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-synced:
	case <-time.After(harness.WaitTimeout):
		t.Fatal("watch did not start")
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// A host agent restart, clean (SIGTERM) or kill -9, within the lease's TTL
// changes nothing its peers see: the restarted agent resumes the lease its
// predecessor recorded, so the host's membership is never deleted nor
// re-put, and the peer neither touches its tunnel (same sw_if_index in its
// VPP) nor rewrites the tunnel's status.
func TestAgentRestartLeavesPeersUntouched(t *testing.T) {
	e := startCluster(t)
	hs := startSpanningHosts(t, e, 2)
	h1, h2 := hs[0], hs[1]
	v2 := vppOf(t, h2)
	e.Put(t, merge(spanIntent(h1, "a1"), spanIntent(h2, "b1")))
	eventuallyTunnels(t, h2, v2, hs, wantTunnel(1, h1.Name, 0))
	peerStatus := harness.WaitStatus[schema.InterfaceStatus](t, e, tunnelStatus(h2, h1), 0, harness.Ready[schema.InterfaceStatus])
	harness.WaitStatus[schema.InterfaceStatus](t, e, tunnelStatus(h1, h2), 0, harness.Ready[schema.InterfaceStatus])
	member := schema.MemberKey(h1.Name, spanNet)
	memberBefore, err := e.Store.Get(bg(), member)
	if err != nil || memberBefore == nil {
		t.Fatalf("node1's membership: %+v, %v", memberBefore, err)
	}
	changes := recordChanges(t, e, member, tunnelStatus(h2, h1))
	tunnelTag := vpp.TagPrefix + vppstate.Owner(schema.TunnelKey(h2.Name, spanNet, h1.Name))
	peerTunnels := func() map[string]uint32 {
		out := map[string]uint32{}
		for _, i := range h2.VPP.Snapshot().Interfaces {
			if i.Tag == tunnelTag {
				out[i.Tag] = i.SwIfIndex
			}
		}
		return out
	}
	tunnelsBefore := peerTunnels()
	if len(tunnelsBefore) != 1 {
		t.Fatalf("node2's uspace tunnels: %v", tunnelsBefore)
	}

	for _, restart := range []struct {
		name string
		stop func()
	}{
		{"SIGTERM", func() {
			if err := h1.Agent.Stop(10 * time.Second); err != nil {
				t.Fatalf("stop node1's agent: %v", err)
			}
		}},
		{"kill -9", h1.Agent.Kill},
	} {
		t.Run(restart.name, func(t *testing.T) {
			restart.stop()
			h1.RestartAgent(t)
			h1.WaitReady(t)
			// Whatever the peer would do about a change, it does at once:
			// give it a moment.
			time.Sleep(2 * time.Second)
			if got := changes(); len(got) != 0 {
				t.Errorf("peers saw changes across node1's agent restart:\n%s", strings.Join(got, "\n"))
			}
			kv, err := e.Store.Get(bg(), member)
			if err != nil || kv == nil {
				t.Errorf("node1's membership after the restart: %v, %v", kv, err)
			} else if kv.CreateRevision != memberBefore.CreateRevision || kv.ModRevision != memberBefore.ModRevision || kv.Lease != memberBefore.Lease {
				t.Errorf("node1's membership after the restart: lease %x, created at revision %d, changed at %d; want it as it was: lease %x, %d, %d",
					kv.Lease, kv.CreateRevision, kv.ModRevision, memberBefore.Lease, memberBefore.CreateRevision, memberBefore.ModRevision)
			}
			if got := peerTunnels(); fmt.Sprint(got) != fmt.Sprint(tunnelsBefore) {
				t.Errorf("node2's tunnels (tag -> sw_if_index) %v, were %v", got, tunnelsBefore)
			}
			st := harness.WaitStatus[schema.InterfaceStatus](t, e, tunnelStatus(h2, h1), 0, harness.Ready[schema.InterfaceStatus])
			if st.SwIfIndex != peerStatus.SwIfIndex || st.ObservedRevision != peerStatus.ObservedRevision {
				t.Errorf("node2's tunnel status %+v, was %+v", st, peerStatus)
			}
		})
	}
}
