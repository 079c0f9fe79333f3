package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/store"
)

// etcdRun is the real etcd binary, one process per member, so that its
// /metrics (served on the client URL) counts exactly the requests of the
// processes under test and its CPU is not the test's.
type etcdRun struct {
	*harness.Etcd
	metricsURLs []string
	members     int
	procs       []*harness.Proc
}

// startEtcd runs a cluster of members real etcd processes on loopback.
func startEtcd(t testing.TB, members int) *etcdRun {
	t.Helper()
	bin := binaries.Path(t, "etcd")
	type member struct{ name, client, peer string }
	ms := make([]member, members)
	var initial []string
	for i := range ms {
		ms[i] = member{name: fmt.Sprintf("m%d", i), client: "http://" + harness.FreeAddr(t), peer: "http://" + harness.FreeAddr(t)}
		initial = append(initial, ms[i].name+"="+ms[i].peer)
	}
	run := &etcdRun{Etcd: &harness.Etcd{}, members: members}
	for _, m := range ms {
		dir := filepath.Join(t.TempDir(), m.name)
		p := harness.StartProc(t, "etcd "+m.name, bin, []string{
			"--name", m.name, "--data-dir", dir,
			"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
			"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "uspace-bench",
			"--log-level", "error",
		})
		run.procs = append(run.procs, p)
		run.Endpoints = append(run.Endpoints, m.client)
		run.metricsURLs = append(run.metricsURLs, m.client+"/metrics")
	}
	run.Store = connectStore(t, run.Endpoints)
	// Writes need a leader: wait until one is elected.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := run.Store.Apply(ctx, store.Op{Key: "/bench/ready", Value: []byte("1")})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd cluster of %d not writable: %v", members, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return run
}

// connectStore connects with retries while etcd starts.
func connectStore(t testing.TB, eps []string) *store.Client {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		st, err := store.Connect(ctx, store.Config{Endpoints: eps, DialTimeout: 2 * time.Second})
		cancel()
		if err == nil {
			t.Cleanup(func() { st.Close() })
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect to etcd %v: %v", eps, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sample is one series of a Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

type metrics []sample

// sum adds every series of name whose labels include match.
func (m metrics) sum(name string, match ...string) float64 {
	var total float64
	for _, s := range m {
		if s.name != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(match); i += 2 {
			if s.labels[match[i]] != match[i+1] {
				ok = false
				break
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// histBound returns the upper bound of the histogram bucket (series
// name_bucket) holding quantile q of the observations made between two
// scrapes: with exponential buckets, "p50 <= bound".
func histBound(before, after metrics, name string, q float64, match ...string) float64 {
	type bucket struct{ le, n float64 }
	count := func(m metrics) map[float64]float64 {
		out := map[float64]float64{}
		for _, s := range m {
			if s.name != name+"_bucket" {
				continue
			}
			ok := true
			for i := 0; i+1 < len(match); i += 2 {
				if s.labels[match[i]] != match[i+1] {
					ok = false
				}
			}
			if le, err := strconv.ParseFloat(s.labels["le"], 64); ok && err == nil {
				out[le] += s.value
			}
		}
		return out
	}
	b0, b1 := count(before), count(after)
	var bs []bucket
	for le, n := range b1 {
		bs = append(bs, bucket{le, n - b0[le]})
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	if len(bs) == 0 || bs[len(bs)-1].n == 0 {
		return 0
	}
	total := bs[len(bs)-1].n
	for _, b := range bs {
		if b.n >= q*total {
			return b.le
		}
	}
	return bs[len(bs)-1].le
}

// scrape reads and merges the metrics of every URL.
func scrape(t testing.TB, urls ...string) metrics {
	t.Helper()
	var out metrics
	for _, u := range urls {
		m, err := scrapeOne(u)
		if err != nil {
			t.Fatalf("scrape %s: %v", u, err)
		}
		out = append(out, m...)
	}
	return out
}

// httpClient scrapes uncompressed: the resync rows poll an agent's
// /metrics every 10 ms, and gzip would have the measured agent compress
// its page a hundred times a second.
var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}

func scrapeOne(url string) (metrics, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the text format: `name{k="v",...} value [ts]`.
func parseMetrics(r io.Reader) (metrics, error) {
	var out metrics
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			s.name = line[:i]
			end := strings.LastIndexByte(line, '}')
			if end < i {
				return nil, fmt.Errorf("bad metric line %q", line)
			}
			parseLabels(line[i+1:end], s.labels)
			rest = strings.TrimSpace(line[end+1:])
		} else {
			name, v, _ := strings.Cut(line, " ")
			s.name, rest = name, strings.TrimSpace(v)
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseLabels(s string, into map[string]string) {
	for s != "" {
		k, rest, ok := strings.Cut(s, "=\"")
		if !ok {
			return
		}
		var v strings.Builder
		i := 0
		for ; i < len(rest); i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				v.WriteByte(rest[i])
				continue
			}
			if rest[i] == '"' {
				break
			}
			v.WriteByte(rest[i])
		}
		into[strings.TrimSpace(k)] = v.String()
		s = strings.TrimLeft(rest[min(i+1, len(rest)):], ", ")
	}
}

// etcdCounts are the etcd counters the benchmark reports.
type etcdCounts struct {
	Range, Txn, Put, DeleteRange, MemberList float64
	Unary                                    float64 // every unary RPC
	WatchStreams                             float64 // Watch streams opened
	WatchRequests                            float64 // messages on Watch streams (create/cancel)
	KeepAlives                               float64 // LeaseKeepAlive messages
	RxBytes, TxBytes                         float64
	KeysPut, KeysDeleted                     float64 // mvcc: keys written
}

func (e *etcdRun) counts(t testing.TB) etcdCounts {
	t.Helper()
	m := scrape(t, e.metricsURLs...)
	handled := func(method string) float64 { return m.sum("grpc_server_handled_total", "grpc_method", method) }
	return etcdCounts{
		Range: handled("Range"), Txn: handled("Txn"), Put: handled("Put"), DeleteRange: handled("DeleteRange"),
		MemberList:    handled("MemberList"),
		Unary:         m.sum("grpc_server_handled_total", "grpc_type", "unary"),
		WatchStreams:  m.sum("grpc_server_started_total", "grpc_method", "Watch"),
		WatchRequests: m.sum("grpc_server_msg_received_total", "grpc_method", "Watch"),
		KeepAlives:    m.sum("grpc_server_msg_received_total", "grpc_method", "LeaseKeepAlive"),
		RxBytes:       m.sum("etcd_network_client_grpc_received_bytes_total"),
		TxBytes:       m.sum("etcd_network_client_grpc_sent_bytes_total"),
		// Every member applies every write: keys per cluster, not per member.
		KeysPut:     m.sum("etcd_mvcc_put_total") / float64(e.members),
		KeysDeleted: m.sum("etcd_mvcc_delete_total") / float64(e.members),
	}
}

func (c etcdCounts) sub(o etcdCounts) etcdCounts {
	return etcdCounts{
		Range: c.Range - o.Range, Txn: c.Txn - o.Txn, Put: c.Put - o.Put, DeleteRange: c.DeleteRange - o.DeleteRange,
		MemberList: c.MemberList - o.MemberList, Unary: c.Unary - o.Unary,
		WatchStreams: c.WatchStreams - o.WatchStreams, WatchRequests: c.WatchRequests - o.WatchRequests,
		KeepAlives: c.KeepAlives - o.KeepAlives, RxBytes: c.RxBytes - o.RxBytes, TxBytes: c.TxBytes - o.TxBytes,
		KeysPut: c.KeysPut - o.KeysPut, KeysDeleted: c.KeysDeleted - o.KeysDeleted,
	}
}

func (c etcdCounts) add(o etcdCounts) etcdCounts {
	return c.sub(o.div(-1))
}

func (c etcdCounts) div(n float64) etcdCounts {
	return etcdCounts{
		Range: c.Range / n, Txn: c.Txn / n, Put: c.Put / n, DeleteRange: c.DeleteRange / n, MemberList: c.MemberList / n,
		Unary: c.Unary / n, WatchStreams: c.WatchStreams / n, WatchRequests: c.WatchRequests / n,
		KeepAlives: c.KeepAlives / n, RxBytes: c.RxBytes / n, TxBytes: c.TxBytes / n,
		KeysPut: c.KeysPut / n, KeysDeleted: c.KeysDeleted / n,
	}
}

// writes are the RPCs that change etcd.
func (c etcdCounts) writes() float64 { return c.Txn + c.Put + c.DeleteRange }

func (c etcdCounts) String() string {
	return fmt.Sprintf("Range %s, Txn %s, Put %s, DeleteRange %s, MemberList %s, unary total %s, Watch streams %s, Watch requests %s, keys put %s, keys deleted %s, %s B received, %s B sent",
		num(c.Range), num(c.Txn), num(c.Put), num(c.DeleteRange), num(c.MemberList), num(c.Unary),
		num(c.WatchStreams), num(c.WatchRequests), num(c.KeysPut), num(c.KeysDeleted), num(c.RxBytes), num(c.TxBytes))
}

// procStatus reads VmRSS and VmHWM (KiB) of the process whose command line
// contains marker (an agent's unique --metrics-addr).
func procStatus(marker string) (pid int, rssKiB, hwmKiB float64, err error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, 0, err
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmd), "\x00"+marker+"\x00") {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(st), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			v, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "VmRSS:":
				rssKiB = v
			case "VmHWM:":
				hwmKiB = v
			}
		}
		return p, rssKiB, hwmKiB, nil
	}
	return 0, 0, 0, fmt.Errorf("no process with %q in its command line", marker)
}
