package cni_test

import (
	"bufio"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/reconcile/containerstatus"
	"github.com/uspace-io/uspace/integration/harness"
)

// etcdCalls are etcd's own counts of the calls it served: unary calls by
// method, and Watch streams opened.
type etcdCalls map[string]float64

func (c etcdCalls) total() float64 {
	var n float64
	for _, v := range c {
		n += v
	}
	return n
}

func (c etcdCalls) sub(o etcdCalls) etcdCalls {
	out := etcdCalls{}
	for k, v := range c {
		if d := v - o[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// scrapeCalls reads etcd's /metrics (served on its client URL).
func scrapeCalls(t *testing.T, endpoint string) etcdCalls {
	t.Helper()
	resp, err := http.Get(endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := etcdCalls{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	for sc.Scan() {
		line := sc.Text()
		unary := strings.HasPrefix(line, "grpc_server_handled_total{") && strings.Contains(line, `grpc_type="unary"`)
		watch := strings.HasPrefix(line, "grpc_server_started_total{") && strings.Contains(line, `grpc_method="Watch"`)
		if !unary && !watch {
			continue
		}
		_, m, _ := strings.Cut(line, `grpc_method="`)
		method, _, _ := strings.Cut(m, `"`)
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[method] += v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// callsOf counts etcd's calls made by f and by what it sets off (the host
// agent's status write), once they have settled.
func callsOf(t *testing.T, endpoint string, f func()) etcdCalls {
	t.Helper()
	before := scrapeCalls(t, endpoint)
	f()
	last := scrapeCalls(t, endpoint)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		now := scrapeCalls(t, endpoint)
		if reflect.DeepEqual(now, last) {
			break
		}
		last = now
	}
	return last.sub(before)
}

// An ADD is one transaction and one watch of the plugin plus the host
// agent's status write; a DEL the same. The read before IPAM, which keeps
// a repeated ADD from allocating twice, is one more with IPAM.
func TestEtcdCallsPerAddAndDel(t *testing.T) {
	e := newEnv(t, true)
	netns := newNS(t)
	ep := e.etcd.Endpoints[0]
	// One ADD and DEL first: the host agent opens its watch stream lazily,
	// and that one-time call is not the ADD's.
	warm := e.netconf(readmeMemif, nil)
	if _, err := e.cni.AddNetworkList(bg(), warm, rt("calls-warm-up", netns.Path(), "net1")); err != nil {
		t.Fatalf("warm-up ADD: %v", err)
	}
	if err := e.cni.DelNetworkList(bg(), warm, rt("calls-warm-up", netns.Path(), "net1")); err != nil {
		t.Fatalf("warm-up DEL: %v", err)
	}
	for _, tc := range []struct {
		name     string
		edit     func(m map[string]any)
		add, del float64
	}{
		{"without IPAM", func(m map[string]any) { delete(m, "ipam") }, 3, 3},
		{"with IPAM", nil, 4, 3},
	} {
		list := e.netconf(readmeMemif, tc.edit)
		id := "calls-" + strings.ReplaceAll(tc.name, " ", "-")
		waitGoneContainerCleanup(t, e)
		add := callsOf(t, ep, func() {
			if _, err := e.cni.AddNetworkList(bg(), list, rt(id, netns.Path(), "net1")); err != nil {
				t.Fatalf("%s: ADD: %v", tc.name, err)
			}
		})
		del := callsOf(t, ep, func() {
			if err := e.cni.DelNetworkList(bg(), list, rt(id, netns.Path(), "net1")); err != nil {
				t.Fatalf("%s: DEL: %v", tc.name, err)
			}
		})
		t.Logf("%s: ADD %v, DEL %v", tc.name, add, del)
		if add.total() > tc.add || del.total() > tc.del {
			t.Errorf("%s: ADD made %v etcd calls (%v), DEL %v (%v); want at most %v and %v",
				tc.name, add.total(), add, del.total(), del, tc.add, tc.del)
		}
	}
}

// waitGoneContainerCleanup waits out the host agent's removal of a deleted
// container's leftover statuses (its own read, a grace after the DEL), so
// that it does not land in the next measured call.
func waitGoneContainerCleanup(t *testing.T, e *env) {
	t.Helper()
	const none = "uspace_gone_containers_with_statuses 0\n"
	seen := false
	for deadline := time.Now().Add(containerstatus.DefaultGrace + 15*time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		waiting := !strings.Contains(harness.HTTPGet(t, "http://"+e.host.MetricsAddr+"/metrics"), none)
		if waiting {
			seen = true
		} else if seen {
			return
		}
	}
	t.Fatalf("the host agent did not finish with the deleted container (uspace_gone_containers_with_statuses seen above zero: %v)", seen)
}
