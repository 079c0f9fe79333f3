package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/testutils"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
)

// endpointCounts are the container counts of the etcd watcher rows.
var endpointCounts = []int{1, 100}

// etcdWatchers is etcd's count of open watchers and watch streams.
func (b *bench) etcdWatchers(t *testing.T) (watchers, streams float64) {
	m := scrape(t, b.etcd.metricsURLs...)
	return m.sum("etcd_debugging_mvcc_watcher_total"), m.sum("etcd_debugging_mvcc_watch_stream_total")
}

// settledWatchers is etcd's watcher count once it has stayed the same for
// a quarter of a second: an agent ready to work may still be opening a
// watch of its own (its registration's guard opens after it registered,
// while the reads it starts from may be done already).
func (b *bench) settledWatchers(t *testing.T) float64 {
	t.Helper()
	last, same := -1.0, 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && same < 5; time.Sleep(50 * time.Millisecond) {
		w, _ := b.etcdWatchers(t)
		if w == last {
			same++
		} else {
			last, same = w, 0
		}
	}
	return last
}

// startEndpointContainer writes a container's meta (with a network
// namespace of its own) and interface intent, and starts its agent:
// through its endpoint (no etcd flag, in the namespace) or directly
// (--etcd-endpoints, --container-id).
func (b *bench) startEndpointContainer(t *testing.T, host, id string, viaEndpoint bool, i int) *harness.Container {
	t.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(); _ = testutils.UnmountNS(n) })
	shared := harness.ShortTempDir(t)
	put(t, b.etcd.Store, schema.ContainerMetaKey(host, id), &schema.ContainerMeta{Host: host, Container: id, Netns: n.Path(), Interfaces: []string{"net1"}})
	put(t, b.etcd.Store, schema.ContainerInterfaceKey(host, id, "net1"), containerIntent(host, id, shared, i))
	t.Cleanup(func() {
		del(t, b.etcd.Store, schema.ContainerInterfaceKey(host, id, "net1"))
		del(t, b.etcd.Store, schema.ContainerMetaKey(host, id))
	})
	if viaEndpoint {
		return b.etcd.StartContainerOn(t, host, shared, harness.ContainerOptions{EndpointNetns: n.Path()}, nil)
	}
	return b.etcd.StartContainer(t, host, shared, []string{"--container-id", id})
}

// waitAllReady reads status events until every key has been ready once
// (errors on the way, a VPP not connected yet, are waited through).
func waitAllReady(t *testing.T, ch <-chan *clientv3.Event, keys []string) {
	t.Helper()
	left := map[string]bool{}
	for _, k := range keys {
		left[k] = true
	}
	timeout := time.After(2 * harness.WaitTimeout)
	for len(left) > 0 {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("status watch closed")
			}
			if s, err := schema.DecodeAs[schema.InterfaceStatus](ev.Kv.Value); err == nil && s.Ready {
				delete(left, string(ev.Kv.Key))
			}
		case <-timeout:
			t.Fatalf("%d of %d containers not ready within %v", len(left), len(keys), 2*harness.WaitTimeout)
		}
	}
}

func modeName(viaEndpoint bool) string {
	if viaEndpoint {
		return "endpoint"
	}
	return "direct"
}

// endpointPhase compares container agents that reach etcd directly with
// ones that reach it through their host agent's endpoint: the watchers
// etcd holds for one host's agents with 1 and 100 containers, and a
// container's convergence, interleaved.
func (b *bench) endpointPhase(t *testing.T) {
	// The benchmark's own status watch is open before the baseline.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := b.watchPrefix(t, ctx, schema.StatusHostPrefix("bench-ep"))
	baseW, baseS := b.etcdWatchers(t)
	h := b.startHost(t, "bench-ep")
	h.WaitReady(t)
	hostW := b.settledWatchers(t)
	for _, viaEndpoint := range []bool{false, true} {
		for _, n := range endpointCounts {
			t.Run(fmt.Sprintf("%s-%d", modeName(viaEndpoint), n), func(t *testing.T) {
				var keys []string
				for i := range n {
					id := fmt.Sprintf("ep-%s-%d-%d", modeName(viaEndpoint), n, i)
					b.startEndpointContainer(t, h.Name, id, viaEndpoint, i)
					keys = append(keys, ctrStatusKey(h.Name, id, "net1"))
				}
				waitAllReady(t, ch, keys)
				w, s := b.etcdWatchers(t)
				row := b.res.valueRow(fmt.Sprintf("etcd_watchers_%s_%d", modeName(viaEndpoint), n), "watchers", w-baseW, 0, "")
				if viaEndpoint {
					row.target(fmt.Sprintf("as with no container (the host agent's own %s)", num(hostW-baseW)), w <= hostW)
				}
				row.note("watchers etcd holds (etcd_debugging_mvcc_watcher_total) for one host agent and %d container agents, all converged, "+
					"%s; watch streams %s; the host agent alone holds %s", n, map[bool]string{false: "each with its own etcd connection and credentials",
					true: "each through its endpoint in its network namespace, served from the host agent's own watch of its host"}[viaEndpoint],
					num(s-baseS), num(hostW-baseW))
			})
		}
	}
	b.endpointConvergence(t, h, ch)
}

// endpointConvergence: intent written -> the container agent's status,
// one container in each mode, samples interleaved so load hits both.
func (b *bench) endpointConvergence(t *testing.T, h *harness.Host, ch <-chan *clientv3.Event) {
	ids := map[bool]string{false: "ep-conv-direct", true: "ep-conv-endpoint"}
	ctrs := map[bool]*harness.Container{}
	out := map[bool][]time.Duration{}
	for _, viaEndpoint := range []bool{false, true} {
		ctrs[viaEndpoint] = b.startEndpointContainer(t, h.Name, ids[viaEndpoint], viaEndpoint, 0)
	}
	waitAllReady(t, ch, []string{ctrStatusKey(h.Name, ids[false], "net1"), ctrStatusKey(h.Name, ids[true], "net1")})
	for i := range b.cfg.samples + warmup {
		for _, viaEndpoint := range []bool{false, true} {
			id := ids[viaEndpoint]
			key := schema.ContainerInterfaceKey(h.Name, id, "net1")
			start := time.Now()
			rev := put(t, b.etcd.Store, key, containerIntent(h.Name, id, ctrs[viaEndpoint].SharedDir, i+1))
			if err := waitStatus(ch, ctrStatusKey(h.Name, id, "net1"), rev); err != nil {
				t.Fatalf("%s sample %d: %v", modeName(viaEndpoint), i, err)
			}
			if i >= warmup {
				out[viaEndpoint] = append(out[viaEndpoint], time.Since(start))
			}
		}
	}
	direct, ep := newDist(out[false]), newDist(out[true])
	row := b.res.latencyRow("container_convergence_endpoint", ep, ms(direct.pct(50)), ms(direct.pct(99)), "direct mode")
	row.target("p50 <= 1.5x direct", row.Ratio != nil && *row.Ratio <= 1.5)
	row.note("a ContainerInterface intent changed (memif slave, MAC, address, route) until the container agent's status for that "+
		"revision reaches a watcher, the agent reaching etcd through its endpoint (reads and writes forwarded by the host agent, its "+
		"watch served from the host agent's watch of its host); floor: the same through the agent's own etcd connection, one sample "+
		"of each in turn (direct p50 %s ms, p99 %s ms)", num(ms(direct.pct(50))), num(ms(direct.pct(99))))
}
