package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/integration/dpview"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/spdksim"
	"github.com/uspace-io/uspace/integration/vppsim"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// startCluster starts the 3-member etcd cluster every test here runs on.
// The etcd test framework may skip a test (its goroutine-leak check, which
// harness.StartCluster keeps, skips every test of a process with a
// long-lived goroutine); outside -short that is a failure here, never a
// silent skip.
func startCluster(t *testing.T) *harness.Etcd {
	t.Helper()
	t.Cleanup(func() {
		if t.Skipped() && !testing.Short() {
			t.Errorf("the etcd test framework skipped this test (goroutines left over from an earlier test?)")
		}
	})
	return harness.StartCluster(t, 3)
}

// startHosts starts a host (simulators and agent process) per name.
func startHosts(t *testing.T, e *harness.Etcd, names ...string) []*harness.Host {
	t.Helper()
	var hs []*harness.Host
	for _, n := range names {
		hs = append(hs, e.StartHost(t, n))
	}
	return hs
}

// etcdLink is one host's network path to etcd: a TCP forwarder on
// 127.0.0.1 per etcd member. Cut is a partition that resets (every
// forwarded connection closed, new ones closed at once); Blackhole is one
// that is silent, as a link that went down (nothing forwarded either way,
// nothing closed, new connections left hanging: only keep-alives and
// timeouts can tell). Heal ends either; after a blackhole, what was held
// back flows on, as TCP would retransmit it. The test's own etcd client
// does not go through it.
type etcdLink struct {
	Endpoints []string

	mu    sync.Mutex
	cut   bool
	held  bool       // blackholed
	thaw  *sync.Cond // broadcast when held ends
	lns   []net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newEtcdLink(t testing.TB, e *harness.Etcd) *etcdLink {
	t.Helper()
	l := &etcdLink{conns: map[net.Conn]struct{}{}}
	l.thaw = sync.NewCond(&l.mu)
	for _, ep := range e.Endpoints {
		network, addr := dialTarget(t, ep)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.lns = append(l.lns, ln)
		l.Endpoints = append(l.Endpoints, "http://"+ln.Addr().String())
		l.wg.Add(1)
		go l.serve(ln, network, addr)
	}
	t.Cleanup(l.close)
	return l
}

// dialTarget turns an etcd endpoint into what net.Dial takes. The tests/v3
// cluster serves on unix sockets named relative to the test's directory.
func dialTarget(t testing.TB, ep string) (network, addr string) {
	t.Helper()
	for _, s := range []string{"unix://", "unixs://"} {
		if p, ok := strings.CutPrefix(ep, s); ok {
			if !filepath.IsAbs(p) {
				wd, err := os.Getwd()
				if err != nil {
					t.Fatal(err)
				}
				p = filepath.Join(wd, p)
			}
			return "unix", p
		}
	}
	ep = strings.TrimPrefix(strings.TrimPrefix(ep, "http://"), "https://")
	return "tcp", ep
}

func (l *etcdLink) serve(ln net.Listener, network, addr string) {
	defer l.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if l.isCut() {
			c.Close()
			continue
		}
		l.waitThawed()
		u, err := net.Dial(network, addr)
		if err != nil { // the member is down: so is this path to it
			c.Close()
			continue
		}
		l.mu.Lock()
		if l.cut {
			l.mu.Unlock()
			c.Close()
			u.Close()
			continue
		}
		l.conns[c], l.conns[u] = struct{}{}, struct{}{}
		l.wg.Add(2)
		l.mu.Unlock()
		go l.pipe(u, c)
		go l.pipe(c, u)
	}
}

func (l *etcdLink) pipe(dst, src net.Conn) {
	defer l.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			l.waitThawed()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	l.mu.Lock()
	delete(l.conns, dst)
	delete(l.conns, src)
	l.mu.Unlock()
}

func (l *etcdLink) isCut() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cut
}

// Cut partitions the host from etcd.
func (l *etcdLink) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	for c := range l.conns {
		c.Close()
	}
}

// Blackhole partitions the host from etcd silently.
func (l *etcdLink) Blackhole() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = true
}

// waitThawed blocks while the link is blackholed.
func (l *etcdLink) waitThawed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.held {
		l.thaw.Wait()
	}
}

// Heal ends the partition.
func (l *etcdLink) Heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut, l.held = false, false
	l.thaw.Broadcast()
}

func (l *etcdLink) close() {
	for _, ln := range l.lns {
		ln.Close()
	}
	l.Heal()
	l.Cut()
	l.wg.Wait()
}

// startLinkedHost starts a host whose agent reaches etcd only through an
// etcdLink the test controls.
func startLinkedHost(t *testing.T, e *harness.Etcd, name string) (*harness.Host, *etcdLink) {
	t.Helper()
	return startLinkedHostOn(t, e, name, harness.HostOptions{})
}

// startLinkedHostOn is startLinkedHost with the host's dataplanes as opts
// choose.
func startLinkedHostOn(t *testing.T, e *harness.Etcd, name string, opts harness.HostOptions) (*harness.Host, *etcdLink) {
	t.Helper()
	link := newEtcdLink(t, e)
	via := &harness.Etcd{Endpoints: link.Endpoints, Store: e.Store, Cluster: e.Cluster}
	return via.StartHostOn(t, name, opts), link
}

// Intents written directly (what a CNI ADD or the volume driver would
// write on the host side).

func memifIntent(h *harness.Host, container, ifname string, bridge uint32) *schema.HostInterface {
	hi := &schema.HostInterface{
		Host: h.Name, Container: container, Name: ifname, Type: schema.IfTypeMemif,
		NetType: schema.NetTypeInterface, MTU: 1500,
		Memif: &schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet,
			SocketPath: filepath.Join(h.SharedDir, container+"-"+ifname)},
	}
	if bridge != 0 {
		hi.NetType, hi.Bridge = schema.NetTypeBridge, bridge
	}
	return hi
}

func vhostIntent(h *harness.Host, container, ifname string, bridge uint32) *schema.HostInterface {
	hi := &schema.HostInterface{
		Host: h.Name, Container: container, Name: ifname, Type: schema.IfTypeVhostUser,
		NetType: schema.NetTypeInterface,
		Vhost:   &schema.VhostSpec{Mode: schema.VhostServer, SocketPath: filepath.Join(h.SharedDir, container+"-"+ifname)},
	}
	if bridge != 0 {
		hi.NetType, hi.Bridge = schema.NetTypeBridge, bridge
	}
	return hi
}

// volumeIntent is a 1 MiB malloc-backed volume, as `docker volume create
// -o size=1M` writes it.
func volumeIntent(h *harness.Host, name string, typ schema.VolumeType, minor uint32) *schema.Volume {
	return &schema.Volume{Host: h.Name, Name: name, Type: typ, Device: name, Root: h.VolumeRoot,
		Bdev: "Malloc-" + name, Minor: minor, Malloc: &schema.MallocSpec{SizeBytes: 1 << 20, BlockSize: 4096}}
}

func ifKey(h *harness.Host, container, ifname string) string {
	return schema.InterfaceKey(h.Name, container, ifname)
}

func ifStatusKey(h *harness.Host, container, ifname string) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: h.Name, Container: container, Interface: ifname})
}

func volKey(h *harness.Host, name string) string { return schema.VolumeKey(h.Name, name) }

func volStatusKey(h *harness.Host, name string) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindVolumeKey, Host: h.Name, Volume: name})
}

func bg() context.Context { return context.Background() }

// list returns every key-value under prefix.
func list(t testing.TB, e *harness.Etcd, prefix string) []store.KV {
	t.Helper()
	kvs, _, err := e.Store.List(bg(), prefix)
	if err != nil {
		t.Fatalf("list %s: %v", prefix, err)
	}
	return kvs
}

// keysByKind lists the keys under host's intent prefix by their kind; a
// key outside the layout is an error.
func keysByKind(t testing.TB, e *harness.Etcd, host string) map[schema.KeyKind][]string {
	t.Helper()
	out := map[schema.KeyKind][]string{}
	for _, kv := range list(t, e, schema.HostPrefix(host)) {
		k, err := schema.ParseKey(kv.Key)
		if err != nil {
			t.Errorf("%s: key outside the layout: %s", host, kv.Key)
			continue
		}
		out[k.Kind] = append(out[k.Kind], kv.Key)
	}
	return out
}

func keysOf(kvs []store.KV) []string {
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, kv.Key)
	}
	return out
}

// hostKeys is every intent and status key of host except its agent's
// registration.
func hostKeys(t testing.TB, e *harness.Etcd, host string) []string {
	t.Helper()
	var out []string
	for _, k := range keysOf(append(list(t, e, schema.HostPrefix(host)), list(t, e, schema.StatusHostPrefix(host))...)) {
		if k != schema.AgentKey(host) {
			out = append(out, k)
		}
	}
	return out
}

// agentLease is the lease of host's registration, 0 when there is none.
func agentLease(t testing.TB, e *harness.Etcd, host string) int64 {
	t.Helper()
	kv, err := e.Store.Get(bg(), schema.AgentKey(host))
	if err != nil {
		t.Fatal(err)
	}
	if kv == nil {
		return 0
	}
	return kv.Lease
}

// waitRegistered watches host's registration until it is there under a
// lease other than stale.
func waitRegistered(t testing.TB, e *harness.Etcd, host string, stale int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg(), harness.WaitTimeout)
	defer cancel()
	if _, err := e.Store.WaitFor(ctx, schema.AgentKey(host), 0, func(kv *store.KV) (bool, error) {
		return kv != nil && kv.Lease != stale, nil
	}); err != nil {
		t.Fatalf("host agent %s did not register again: %v", host, err)
	}
}

var errEnough = errors.New("enough")

// waitReadyCount watches the statuses under prefix until at least n of
// them report ready at revision rev or later, and returns how many do.
func waitReadyCount(t testing.TB, e *harness.Etcd, prefix string, rev int64, n int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg(), harness.WaitTimeout)
	defer cancel()
	ready := map[string]bool{}
	note := func(kv store.KV) {
		var s struct {
			ObservedRevision int64 `json:"observedRevision"`
			Ready            bool  `json:"ready"`
		}
		ready[kv.Key] = json.Unmarshal(kv.Value, &s) == nil && s.Ready && s.ObservedRevision >= rev
	}
	count := func() (c int) {
		for _, ok := range ready {
			if ok {
				c++
			}
		}
		return c
	}
	err := e.Store.ListWatch(ctx, prefix, func(ev store.Event) error {
		switch ev.Type {
		case store.Sync:
			clear(ready)
			for _, kv := range ev.Snapshot {
				note(kv)
			}
		case store.Put:
			note(ev.KV)
		case store.Delete:
			delete(ready, ev.KV.Key)
		}
		if count() >= n {
			return errEnough
		}
		return nil
	})
	if !errors.Is(err, errEnough) {
		t.Fatalf("waiting for %d ready statuses under %s at revision %d (have %d): %v", n, prefix, rev, count(), err)
	}
	return count()
}

// wantIf is one interface a VPP must hold.
type wantIf struct {
	key    string // the intent key; the VPP tag carries its owner hash
	typ    schema.IfType
	socket string
	bridge uint32
	idx    uint32 // sw_if_index the status reported
	addrs  []string
	routes []schema.Route
}

// converged waits, by watching status keys, until h's agent has applied
// every interface and volume intent of h at its current revision and
// removed every status whose intent is gone; runs a probe intent through
// the agent's queue (so a sweep queued before has run); then asserts that
// h's VPP and SPDK hold exactly what the intents say. It returns the
// interface statuses by intent key.
func converged(t testing.TB, e *harness.Etcd, h *harness.Host) map[string]*schema.InterfaceStatus {
	t.Helper()
	statuses, _ := convergedState(t, e, h)
	return statuses
}

// convergedState is converged that also returns the VPP state it checked.
func convergedState(t testing.TB, e *harness.Etcd, h *harness.Host) (map[string]*schema.InterfaceStatus, vppsim.State) {
	t.Helper()
	var want []wantIf
	vols := map[string]*schema.Volume{}
	statuses := map[string]*schema.InterfaceStatus{}
	intents := map[string]bool{}
	for _, kv := range list(t, e, schema.HostPrefix(h.Name)) {
		k, err := schema.ParseKey(kv.Key)
		if err != nil {
			t.Errorf("key outside the v1 layout under %s: %s", h.Name, kv.Key)
			continue
		}
		switch k.Kind {
		case schema.KindInterfaceKey:
			intents[kv.Key] = true
			hi, err := schema.DecodeAs[schema.HostInterface](kv.Value)
			if err != nil {
				t.Fatalf("intent %s: %v", kv.Key, err)
			}
			st := harness.WaitStatus[schema.InterfaceStatus](t, e, schema.StatusKey(k), kv.ModRevision, harness.Ready[schema.InterfaceStatus])
			statuses[kv.Key] = st
			w := wantIf{key: kv.Key, typ: hi.Type, bridge: hi.Bridge, idx: st.SwIfIndex}
			if hi.Memif != nil {
				w.socket = vppstate.SocketFilename(hi.Memif)
			} else if hi.Vhost != nil {
				w.socket = hi.Vhost.SocketPath
			}
			want = append(want, w)
		case schema.KindVolumeKey:
			intents[kv.Key] = true
			v, err := schema.DecodeAs[schema.Volume](kv.Value)
			if err != nil {
				t.Fatalf("intent %s: %v", kv.Key, err)
			}
			harness.WaitStatus[schema.VolumeStatus](t, e, schema.StatusKey(k), kv.ModRevision, harness.Ready[schema.VolumeStatus])
			vols[kv.Key] = v
		}
	}
	for _, kv := range list(t, e, schema.StatusHostPrefix(h.Name)) {
		k, err := schema.ParseKey(kv.Key)
		if err != nil || (k.Kind != schema.KindInterfaceKey && k.Kind != schema.KindVolumeKey) {
			continue
		}
		if !intents[k.IntentOf().String()] {
			e.WaitGone(t, kv.Key)
		}
	}
	want = append(want, convergedDerived(t, e, h)...)
	probeHost(t, e, h)
	st := hostVPP(t, h)
	checkVPP(t, "host "+h.Name, st, want)
	checkSPDK(t, "host "+h.Name, hostSPDK(t, h), vols)
	return statuses, st
}

// settled polls, bounded, until h's VPP and SPDK hold exactly what the
// intents and the current statuses say. It is for the one case without an
// etcd signal: a dataplane restarted under a running agent, which re-applies
// everything and may rewrite no status at all when nothing reportable
// changed. converged does the strict check afterwards.
func settled(t testing.TB, e *harness.Etcd, h *harness.Host) {
	t.Helper()
	deadline := time.Now().Add(harness.WaitTimeout)
	for {
		rec := &recorder{TB: t}
		want, vols := current(rec, e, h)
		checkVPP(rec, "host "+h.Name, hostVPP(t, h), want)
		checkSPDK(rec, "host "+h.Name, hostSPDK(t, h), vols)
		if len(rec.msgs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %s did not settle within %v:\n%s", h.Name, harness.WaitTimeout, strings.Join(rec.msgs, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// current reads h's intents and their statuses as they are now; a status
// missing, not ready or behind its intent is an error.
func current(t testing.TB, e *harness.Etcd, h *harness.Host) ([]wantIf, map[string]*schema.Volume) {
	t.Helper()
	statuses := map[string]store.KV{}
	for _, kv := range list(t, e, schema.StatusHostPrefix(h.Name)) {
		statuses[kv.Key] = kv
	}
	var want []wantIf
	vols := map[string]*schema.Volume{}
	for _, kv := range list(t, e, schema.HostPrefix(h.Name)) {
		k, err := schema.ParseKey(kv.Key)
		if err != nil || (k.Kind != schema.KindInterfaceKey && k.Kind != schema.KindVolumeKey) {
			continue
		}
		var st struct {
			ObservedRevision int64  `json:"observedRevision"`
			Ready            bool   `json:"ready"`
			SwIfIndex        uint32 `json:"swIfIndex"`
		}
		skv, ok := statuses[schema.StatusKey(k)]
		if !ok || json.Unmarshal(skv.Value, &st) != nil || !st.Ready || st.ObservedRevision < kv.ModRevision {
			t.Errorf("status of %s: %s", kv.Key, skv.Value)
			continue
		}
		if k.Kind == schema.KindVolumeKey {
			v, err := schema.DecodeAs[schema.Volume](kv.Value)
			if err != nil {
				t.Fatalf("intent %s: %v", kv.Key, err)
			}
			vols[kv.Key] = v
			continue
		}
		hi, err := schema.DecodeAs[schema.HostInterface](kv.Value)
		if err != nil {
			t.Fatalf("intent %s: %v", kv.Key, err)
		}
		w := wantIf{key: kv.Key, typ: hi.Type, bridge: hi.Bridge, idx: st.SwIfIndex}
		if hi.Memif != nil {
			w.socket = vppstate.SocketFilename(hi.Memif)
		} else if hi.Vhost != nil {
			w.socket = hi.Vhost.SocketPath
		}
		want = append(want, w)
	}
	return append(want, currentDerived(t, e, h, statuses)...), vols
}

// recorder collects errors instead of failing the test.
type recorder struct {
	testing.TB
	msgs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// probeHost puts an interface intent and deletes it again, waiting for the
// agent each time: whatever the agent had queued before has been handled.
func probeHost(t testing.TB, e *harness.Etcd, h *harness.Host) {
	t.Helper()
	const c, i = "zz-probe", "net0"
	rev := e.Put(t, map[string]schema.Object{ifKey(h, c, i): memifIntent(h, c, i, 0)})
	harness.WaitStatus[schema.InterfaceStatus](t, e, ifStatusKey(h, c, i), rev, harness.Ready[schema.InterfaceStatus])
	e.Delete(t, ifKey(h, c, i))
	e.WaitGone(t, ifStatusKey(h, c, i))
}

// convergedContainer is converged for one container agent: its container's
// interface intents applied to its own VPP, exactly.
func convergedContainer(t testing.TB, e *harness.Etcd, c *harness.Container, id string) {
	t.Helper()
	convergedContainerState(t, e, c, id)
}

// convergedContainerState is convergedContainer that also returns the VPP
// state it checked.
func convergedContainerState(t testing.TB, e *harness.Etcd, c *harness.Container, id string) vppsim.State {
	t.Helper()
	host := c.Host
	var want []wantIf
	intents := map[string]bool{}
	for _, kv := range list(t, e, schema.ContainerPrefix(host, id)) {
		k, err := schema.ParseKey(kv.Key)
		if err != nil || k.Kind != schema.KindContainerInterfaceKey {
			continue
		}
		intents[kv.Key] = true
		st := harness.WaitStatus[schema.InterfaceStatus](t, e, schema.StatusKey(k), kv.ModRevision, harness.Ready[schema.InterfaceStatus])
		want = append(want, ctrWant(t, kv, st.SwIfIndex))
	}
	for _, kv := range list(t, e, schema.StatusContainerPrefix(host, id)) {
		if k, err := schema.ParseKey(kv.Key); err == nil && !intents[k.IntentOf().String()] {
			e.WaitGone(t, kv.Key)
		}
	}
	probeContainer(t, e, c, id)
	st := ctrVPP(t, c)
	checkVPP(t, "container "+id, st, want)
	return st
}

// currentCtr reads a container's intents and their statuses as they are
// now; a status missing, not ready or behind its intent is an error.
func currentCtr(t testing.TB, e *harness.Etcd, host, id string) []wantIf {
	t.Helper()
	var want []wantIf
	for _, kv := range list(t, e, schema.ContainerPrefix(host, id)) {
		k, err := schema.ParseKey(kv.Key)
		if err != nil || k.Kind != schema.KindContainerInterfaceKey {
			continue
		}
		skv, err := e.Store.Get(bg(), schema.StatusKey(k))
		if err != nil {
			t.Fatal(err)
		}
		var st *schema.InterfaceStatus
		if skv != nil {
			st, err = schema.DecodeAs[schema.InterfaceStatus](skv.Value)
		}
		if skv == nil || err != nil || !st.Ready || st.ObservedRevision < kv.ModRevision {
			t.Errorf("status of %s: %+v", kv.Key, skv)
			continue
		}
		want = append(want, ctrWant(t, kv, st.SwIfIndex))
	}
	return want
}

// ctrWant is what a container interface intent asks of the container's
// VPP; idx is the sw_if_index its status reports.
func ctrWant(t testing.TB, kv store.KV, idx uint32) wantIf {
	t.Helper()
	ci, err := schema.DecodeAs[schema.ContainerInterface](kv.Value)
	if err != nil {
		t.Fatalf("intent %s: %v", kv.Key, err)
	}
	w := wantIf{key: kv.Key, typ: ci.Type, idx: idx}
	if ci.Memif != nil {
		w.socket = vppstate.SocketFilename(ci.Memif)
	} else if ci.Vhost != nil {
		w.socket = ci.Vhost.SocketPath
	}
	for _, ip := range ci.IPs {
		w.addrs = append(w.addrs, ip.Address)
	}
	w.routes = ci.Routes
	return w
}

// probeContainer puts a container interface intent and deletes it again,
// waiting for the container agent each time: whatever it had queued before
// has been handled. A container without a meta (no CNI attachment now)
// gets one for the probe's time: for the host agent a container without
// one is gone, and it removes such a container's statuses itself after a
// grace period, which would end the wait before the container agent got
// to the intent.
func probeContainer(t testing.TB, e *harness.Etcd, c *harness.Container, id string) {
	t.Helper()
	host := c.Host
	pk := schema.ContainerInterfaceKey(host, id, "zz-probe")
	psk := schema.StatusKey(schema.Key{Kind: schema.KindContainerInterfaceKey, Host: host, Container: id, Interface: "zz-probe"})
	objs := map[string]schema.Object{pk: &schema.ContainerInterface{Host: host, Container: id, Name: "zz-probe",
		Type: schema.IfTypeMemif, Memif: &schema.MemifSpec{Role: schema.MemifSlave, Mode: schema.MemifEthernet,
			SocketPath: filepath.Join(c.SharedDir, id+"-zz-probe")}}}
	meta := schema.ContainerMetaKey(host, id)
	kv, err := e.Store.Get(bg(), meta)
	if err != nil {
		t.Fatal(err)
	}
	if kv == nil {
		objs[meta] = &schema.ContainerMeta{Host: host, Container: id, Interfaces: []string{"zz-probe"}}
	}
	rev := e.Put(t, objs)
	harness.WaitStatus[schema.InterfaceStatus](t, e, psk, rev, harness.Ready[schema.InterfaceStatus])
	e.Delete(t, pk)
	e.WaitGone(t, psk)
	if kv == nil {
		e.Delete(t, meta)
	}
}

// checkVPP asserts that st holds exactly the uspace interfaces of want:
// one per intent (tagged with its owner), with the sw_if_index its status
// reported, the intent's socket, bridge domain and addresses; no uspace
// interface, memif, vhost-user interface or uspace bridge domain besides.
func checkVPP(t testing.TB, who string, st vppsim.State, want []wantIf) {
	t.Helper()
	byOwner := map[string][]vppsim.InterfaceState{}
	for _, i := range st.Interfaces {
		if o, ok := strings.CutPrefix(i.Tag, vpp.TagPrefix); ok {
			byOwner[o] = append(byOwner[o], i)
		}
	}
	memifs := map[uint32]vppsim.MemifState{}
	for _, m := range st.Memifs {
		memifs[m.SwIfIndex] = m
	}
	vhosts := map[uint32]vppsim.VhostUserState{}
	for _, v := range st.VhostUsers {
		vhosts[v.SwIfIndex] = v
	}
	sockets := map[uint32]string{}
	for _, s := range st.MemifSockets {
		sockets[s.ID] = s.Filename
	}
	owners := map[string]string{}
	members := map[uint32][]uint32{}
	nMemif, nVhost := 0, 0
	for _, w := range want {
		o := vppstate.Owner(w.key)
		owners[o] = w.key
		got := byOwner[o]
		if len(got) != 1 {
			t.Errorf("%s: VPP holds %d interfaces for %s, want 1", who, len(got), w.key)
			continue
		}
		i := got[0]
		if i.SwIfIndex != w.idx {
			t.Errorf("%s: %s is sw_if_index %d in VPP, its status says %d", who, w.key, i.SwIfIndex, w.idx)
		}
		if !i.AdminUp {
			t.Errorf("%s: %s (sw_if_index %d) is admin down", who, w.key, i.SwIfIndex)
		}
		switch w.typ {
		case schema.IfTypeMemif:
			nMemif++
			if m, ok := memifs[i.SwIfIndex]; !ok || sockets[m.SocketID] != w.socket {
				t.Errorf("%s: %s: memif %+v (present %v) on socket %q, want %q", who, w.key, m, ok, sockets[m.SocketID], w.socket)
			}
		case schema.IfTypeVhostUser:
			nVhost++
			if v, ok := vhosts[i.SwIfIndex]; !ok || v.SockFilename != w.socket {
				t.Errorf("%s: %s: vhost-user %+v (present %v), want socket %q", who, w.key, v, ok, w.socket)
			}
		}
		if i.BridgeDomain != w.bridge {
			t.Errorf("%s: %s is in bridge domain %d, want %d", who, w.key, i.BridgeDomain, w.bridge)
		}
		if w.bridge != 0 {
			members[w.bridge] = append(members[w.bridge], i.SwIfIndex)
		}
		for _, a := range w.addrs {
			if !slices.Contains(i.Addresses, a) {
				t.Errorf("%s: %s lacks address %s: %v", who, w.key, a, i.Addresses)
			}
		}
	}
	for o, is := range byOwner {
		if _, ok := owners[o]; !ok {
			t.Errorf("%s: VPP holds %d uspace interface(s) of owner %s that no intent of this host wants: %+v", who, len(is), o, is)
		}
	}
	if len(st.Memifs) != nMemif {
		t.Errorf("%s: VPP holds %d memifs, want %d", who, len(st.Memifs), nMemif)
	}
	if len(st.VhostUsers) != nVhost {
		t.Errorf("%s: VPP holds %d vhost-user interfaces, want %d", who, len(st.VhostUsers), nVhost)
	}
	seen := map[uint32]bool{}
	for _, bd := range st.BridgeDomains {
		want, ok := members[bd.ID]
		if !ok {
			if strings.HasPrefix(bd.Tag, vpp.TagPrefix) {
				t.Errorf("%s: uspace bridge domain %d left with members %v and no intent in it", who, bd.ID, bd.Members)
			}
			continue
		}
		seen[bd.ID] = true
		got := slices.Sorted(slices.Values(bd.Members))
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: bridge domain %d has members %v, want %v", who, bd.ID, got, want)
		}
	}
	for id := range members {
		if !seen[id] {
			t.Errorf("%s: bridge domain %d missing", who, id)
		}
	}
	checkNoStrays(t, who, st)
	checkRoutes(t, who, st, want)
}

// checkRoutes asserts that every route an intent asks for is in st,
// through the intent's interface, and that no route with a gateway leaves
// through a uspace interface unless an intent of that interface asks for
// it (VPP keeps routes after their interface goes).
func checkRoutes(t testing.TB, who string, st vppsim.State, want []wantIf) {
	t.Helper()
	type via struct {
		dst, gw string
		idx     uint32
	}
	have, asked := map[via]bool{}, map[via]bool{}
	for _, r := range st.Routes {
		for _, p := range r.Paths {
			// A host route to its own next hop is VPP's, for a neighbour.
			if p.NextHop != "" && canonPrefix(r.Prefix) != canonPrefix(p.NextHop+"/32") && canonPrefix(r.Prefix) != canonPrefix(p.NextHop+"/128") {
				have[via{canonPrefix(r.Prefix), p.NextHop, p.SwIfIndex}] = true
			}
		}
	}
	uspace := map[uint32]bool{}
	for _, i := range st.Interfaces {
		uspace[i.SwIfIndex] = strings.HasPrefix(i.Tag, vpp.TagPrefix)
	}
	for _, w := range want {
		for _, r := range w.routes {
			v := via{canonPrefix(r.Dst), r.GW, w.idx}
			asked[v] = true
			if !have[v] {
				t.Errorf("%s: %s: route %s via %s missing from VPP", who, w.key, r.Dst, r.GW)
			}
		}
	}
	for v := range have {
		if uspace[v.idx] && !asked[v] {
			t.Errorf("%s: route %s via %s (sw_if_index %d) left in VPP with no intent asking for it", who, v.dst, v.gw, v.idx)
		}
	}
}

func canonPrefix(s string) string {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return s
	}
	return p.Masked().String()
}

// checkNoStrays asserts that st holds nothing uspace did not make: no
// interface but local0 without a uspace tag, no bridge domain without one,
// and no memif socket filename (but VPP's default, id 0) that no memif
// uses.
func checkNoStrays(t testing.TB, who string, st vppsim.State) {
	t.Helper()
	for _, i := range st.Interfaces {
		if i.SwIfIndex != 0 && !strings.HasPrefix(i.Tag, vpp.TagPrefix) {
			t.Errorf("%s: VPP holds interface %s (sw_if_index %d, %s) that uspace did not make", who, i.Name, i.SwIfIndex, i.DevType)
		}
	}
	for _, bd := range st.BridgeDomains {
		if bd.ID != 0 && !strings.HasPrefix(bd.Tag, vpp.TagPrefix) {
			t.Errorf("%s: VPP holds bridge domain %d (tag %q) that uspace did not make", who, bd.ID, bd.Tag)
		}
	}
	used := map[uint32]bool{}
	for _, m := range st.Memifs {
		used[m.SocketID] = true
	}
	for _, so := range st.MemifSockets {
		if so.ID != 0 && !used[so.ID] {
			t.Errorf("%s: memif socket id %d (%s) left with no memif on it", who, so.ID, so.Filename)
		}
	}
}

// hostVPP is the state of h's VPP, simulated or real.
func hostVPP(t testing.TB, h *harness.Host) vppsim.State {
	t.Helper()
	if h.RealVPP == nil {
		return h.VPP.Snapshot()
	}
	return realVPP(t, h.RealVPP.APISocket)
}

// ctrVPP is the state of c's VPP, simulated or real.
func ctrVPP(t testing.TB, c *harness.Container) vppsim.State {
	t.Helper()
	if c.RealVPP == nil {
		return c.VPP.Snapshot()
	}
	return realVPP(t, c.RealVPP.APISocket)
}

func realVPP(t testing.TB, socket string) vppsim.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg(), harness.WaitTimeout)
	defer cancel()
	st, err := dpview.VPP(ctx, socket)
	if err != nil {
		t.Fatalf("read VPP state: %v", err)
	}
	return st
}

// hostSPDK is the state of h's SPDK, simulated or real.
func hostSPDK(t testing.TB, h *harness.Host) spdksim.Snapshot {
	t.Helper()
	if h.RealSPDK == nil {
		return h.SPDK.Snapshot()
	}
	ctx, cancel := context.WithTimeout(bg(), harness.WaitTimeout)
	defer cancel()
	snap, err := dpview.SPDK(ctx, h.RealSPDK.RPCSocket)
	if err != nil {
		t.Fatalf("read SPDK state of %s: %v", h.Name, err)
	}
	return snap
}

// checkSPDK asserts that SPDK holds exactly one controller per volume
// intent, on the intent's bdev, and exactly the malloc bdevs the intents
// own.
func checkSPDK(t testing.TB, who string, snap spdksim.Snapshot, vols map[string]*schema.Volume) {
	t.Helper()
	ctrls := map[string]spdksim.ControllerState{}
	for _, c := range snap.Controllers {
		ctrls[c.Ctrlr] = c
	}
	var wantBdevs, gotBdevs []string
	for _, v := range vols {
		c, ok := ctrls[v.Device]
		if !ok {
			t.Errorf("%s: SPDK has no controller %s for volume %s", who, v.Device, v.Name)
			continue
		}
		bdev := c.Bdev
		if v.Type == schema.VolumeSCSI && len(c.Targets) > 0 {
			bdev = c.Targets[0].Bdev
		}
		if c.Type != string(v.Type) || bdev != v.Bdev {
			t.Errorf("%s: controller %+v, want %s on bdev %s", who, c, v.Type, v.Bdev)
		}
		if v.Malloc != nil {
			wantBdevs = append(wantBdevs, v.Bdev)
		}
	}
	if len(ctrls) != len(vols) {
		t.Errorf("%s: SPDK has %d controllers, want %d: %+v", who, len(ctrls), len(vols), snap.Controllers)
	}
	for _, b := range snap.Bdevs {
		gotBdevs = append(gotBdevs, b.Name)
	}
	sort.Strings(wantBdevs)
	sort.Strings(gotBdevs)
	if !slices.Equal(gotBdevs, wantBdevs) {
		t.Errorf("%s: SPDK bdevs %v, want %v", who, gotBdevs, wantBdevs)
	}
}

// dataplane renders h's VPP and SPDK state that uspace owns, for comparing
// two moments.
func dataplane(h *harness.Host) string {
	st := h.VPP.Snapshot()
	var lines []string
	for _, i := range st.Interfaces {
		if strings.HasPrefix(i.Tag, vpp.TagPrefix) {
			lines = append(lines, fmt.Sprintf("if %s idx=%d bd=%d up=%v", i.Tag, i.SwIfIndex, i.BridgeDomain, i.AdminUp))
		}
	}
	for _, m := range st.Memifs {
		lines = append(lines, fmt.Sprintf("memif %d socket=%d", m.SwIfIndex, m.SocketID))
	}
	for _, v := range st.VhostUsers {
		lines = append(lines, fmt.Sprintf("vhost %d %s", v.SwIfIndex, v.SockFilename))
	}
	for _, bd := range st.BridgeDomains {
		lines = append(lines, fmt.Sprintf("bd %d %v", bd.ID, slices.Sorted(slices.Values(bd.Members))))
	}
	snap := h.SPDK.Snapshot()
	for _, c := range snap.Controllers {
		lines = append(lines, fmt.Sprintf("ctrl %s %s %s", c.Ctrlr, c.Type, c.Bdev))
	}
	for _, b := range snap.Bdevs {
		lines = append(lines, "bdev "+b.Name)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// parallel runs f(0..n-1) concurrently and returns their errors.
func parallel(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(i) }()
	}
	wg.Wait()
	return errs
}
