package cluster_test

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
)

// attachment is one CNI attachment: a container on a host.
type attachment struct {
	c     *cniHost
	id    string
	netns string
}

// addAll runs the ADDs concurrently; every one must succeed. It returns
// the results in the order of atts.
func addAll(t *testing.T, atts []attachment) []*types100.Result {
	t.Helper()
	results, errs := addEach(atts)
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return results
}

// addEach runs the ADDs concurrently and returns their results and errors.
func addEach(atts []attachment) ([]*types100.Result, []error) {
	results := make([]*types100.Result, len(atts))
	errs := parallel(len(atts), func(i int) error {
		var err error
		results[i], err = atts[i].c.add(bg(), atts[i].id, atts[i].netns)
		return err
	})
	return results, errs
}

// delAll runs the DELs concurrently; every one must succeed.
func delAll(t *testing.T, atts []attachment) {
	t.Helper()
	for _, err := range parallel(len(atts), func(i int) error { return atts[i].c.del(bg(), atts[i].id, atts[i].netns) }) {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// checkAttached asserts that etcd holds, for c's host, exactly the
// attachments of ids (host-side intent, container meta, container-side
// intent, host status), that the agent converged VPP to exactly their
// interfaces, all in bridge domain 4, and that IPAM holds one address per
// attachment.
func checkAttached(t *testing.T, e *harness.Etcd, c *cniHost, ids []string) {
	t.Helper()
	h := c.h
	var wantIfs, wantMeta, wantCtr []string
	for _, id := range ids {
		wantIfs = append(wantIfs, schema.InterfaceKey(h.Name, id, "net1"))
		wantMeta = append(wantMeta, schema.ContainerMetaKey(h.Name, id))
		wantCtr = append(wantCtr, schema.ContainerInterfaceKey(h.Name, id, "net1"))
	}
	got := keysByKind(t, e, h.Name)
	gotIfs, gotMeta, gotCtr := got[schema.KindInterfaceKey], got[schema.KindContainerMetaKey], got[schema.KindContainerInterfaceKey]
	for _, s := range [][]string{wantIfs, wantMeta, wantCtr, gotIfs, gotMeta, gotCtr} {
		sort.Strings(s)
	}
	if !slices.Equal(gotIfs, wantIfs) || !slices.Equal(gotMeta, wantMeta) || !slices.Equal(gotCtr, wantCtr) {
		t.Errorf("%s: etcd holds interfaces %v, metas %v, container interfaces %v; want %v, %v, %v",
			h.Name, gotIfs, gotMeta, gotCtr, wantIfs, wantMeta, wantCtr)
	}
	statuses := converged(t, e, h)
	st := h.VPP.Snapshot()
	if len(st.Memifs) != len(ids) {
		t.Errorf("%s: VPP holds %d memifs, want %d", h.Name, len(st.Memifs), len(ids))
	}
	for _, k := range wantIfs {
		if s := statuses[k]; s == nil || s.Bridge != 4 {
			t.Errorf("%s: status of %s = %+v, want bridge domain 4", h.Name, k, s)
		}
	}
	for _, s := range st.MemifSockets {
		// Each an abstract socket in its container's netns (the default),
		// or a file in the host's shared dir.
		abstract := strings.HasPrefix(s.Filename, "abstract:uspace-") && strings.Contains(s.Filename, ",netns_name=/")
		if s.ID != 0 && !abstract && filepath.Dir(s.Filename) != h.SharedDir {
			t.Errorf("%s: memif socket %s neither in a container's netns nor in this host's shared dir %s", h.Name, s.Filename, h.SharedDir)
		}
	}
	if got := c.reservations(); len(got) != len(ids) {
		t.Errorf("%s: IPAM holds %d addresses, want %d: %v", h.Name, len(got), len(ids), got)
	}
}

// checkDetached asserts that nothing of any attachment is left for c's
// host: no intent or status in etcd, no uspace object in VPP, no IPAM
// reservation.
func checkDetached(t *testing.T, e *harness.Etcd, c *cniHost) {
	t.Helper()
	h := c.h
	if left := hostKeys(t, e, h.Name); len(left) != 0 {
		t.Errorf("%s: %d keys left in etcd, e.g. %v", h.Name, len(left), left[:min(3, len(left))])
	}
	converged(t, e, h)
	if st := h.VPP.Snapshot(); len(st.Memifs) != 0 || len(st.BridgeDomains) != 0 {
		t.Errorf("%s: VPP still holds memifs %+v, bridge domains %+v", h.Name, st.Memifs, st.BridgeDomains)
	}
	if got := c.reservations(); len(got) != 0 {
		t.Errorf("%s: IPAM still holds %v", h.Name, got)
	}
}

// Scenario 1: 3 hosts x 20 containers ADD concurrently through libcni and
// the real plugin, with the same container IDs on every host; then DEL.
// Every host's etcd prefix and VPP hold exactly its own 20 attachments
// (sockets under its own shared dir, addresses from its own subnet, one
// memif per attachment in bridge domain 4), then none.
func TestCNIAcrossHosts(t *testing.T) {
	const perHost = 20
	e := startCluster(t)
	hosts := startHosts(t, e, "node1", "node2", "node3")
	var cnis []*cniHost
	for i, h := range hosts {
		cnis = append(cnis, newCNIHost(t, h, i+1, e.Endpoints))
	}
	// cnitool's IDs: all share a prefix; the same IDs on every host.
	var ids []string
	for i := range perHost {
		ids = append(ids, fmt.Sprintf("cnitool-%016x", 0xc0ffee00+i))
	}
	var atts []attachment
	for _, c := range cnis {
		for _, id := range ids {
			atts = append(atts, attachment{c: c, id: id, netns: newNS(t).Path()})
		}
	}

	start := time.Now()
	results := addAll(t, atts)
	addTook := time.Since(start)

	for n, c := range cnis {
		subnet := netip.MustParsePrefix(fmt.Sprintf("10.56.%d.0/24", n+1))
		sockets, ips := map[string]bool{}, map[string]bool{}
		for i, a := range atts {
			if a.c != c {
				continue
			}
			r := results[i]
			if len(r.Interfaces) != 2 || len(r.IPs) != 1 {
				t.Fatalf("%s/%s: result %+v", c.h.Name, a.id, r)
			}
			// The host side is named as VPP names it (one socket per
			// interface here, so the names differ as the sockets do).
			sock := r.Interfaces[0].Name
			if len(sock) > 15 || !strings.HasPrefix(sock, "memif") {
				t.Errorf("%s/%s: host-side interface %q is not VPP's memif name", c.h.Name, a.id, sock)
			}
			if ip := r.IPs[0].Address.IP; !subnet.Contains(netip.MustParseAddr(ip.String())) {
				t.Errorf("%s/%s: address %s not from %s", c.h.Name, a.id, ip, subnet)
			}
			sockets[sock], ips[r.IPs[0].Address.String()] = true, true
		}
		if len(sockets) != perHost || len(ips) != perHost {
			t.Errorf("%s: %d distinct sockets and %d distinct addresses for %d ADDs", c.h.Name, len(sockets), len(ips), perHost)
		}
		checkAttached(t, e, c, ids)
	}

	start = time.Now()
	delAll(t, atts)
	delTook := time.Since(start)
	for _, c := range cnis {
		checkDetached(t, e, c)
	}
	t.Logf("%d concurrent ADDs over %d hosts took %v, DELs %v", len(atts), len(hosts), addTook, delTook)
}

// Scenario 2: etcd members fail while CNI ADDs run. Each member in turn is
// stopped, a round of ADDs on every host runs against the remaining two,
// and the member is restarted; then the leader is stopped while a round of
// ADDs is in flight. Every ADD succeeds (the plugin waits for the agent's
// status, so the agents' watches carried on too), every host converges to
// exactly its attachments after each step, and DEL removes everything.
func TestEtcdMemberLossAndLeaderKill(t *testing.T) {
	const perRound = 2
	e := startCluster(t)
	hosts := startHosts(t, e, "node1", "node2", "node3")
	var cnis []*cniHost
	for i, h := range hosts {
		cnis = append(cnis, newCNIHost(t, h, i+1, e.Endpoints))
	}
	var (
		mu     sync.Mutex
		all    []attachment
		byHost = map[*cniHost][]string{}
	)
	round := func(name string) []attachment {
		var atts []attachment
		for _, c := range cnis {
			for i := range perRound {
				atts = append(atts, attachment{c: c, id: fmt.Sprintf("%s-%d", name, i), netns: newNS(t).Path()})
			}
		}
		return atts
	}
	record := func(atts []attachment) {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range atts {
			all = append(all, a)
			byHost[a.c] = append(byHost[a.c], a.id)
		}
	}
	checkAll := func(step string) {
		t.Helper()
		for _, c := range cnis {
			checkAttached(t, e, c, byHost[c])
		}
		if t.Failed() {
			t.Fatalf("after %s", step)
		}
	}

	atts := round("base")
	addAll(t, atts)
	record(atts)
	checkAll("base")

	for i, m := range e.Cluster.Members {
		m.Stop(t)
		atts := round(fmt.Sprintf("m%d-down", i))
		addAll(t, atts)
		record(atts)
		checkAll(fmt.Sprintf("member %d stopped", i))
		if err := m.Restart(t); err != nil {
			t.Fatalf("restart member %d: %v", i, err)
		}
		e.Cluster.WaitLeader(t)
	}

	// The leader goes away while ADDs are in flight.
	lead := e.Cluster.WaitLeader(t)
	atts = round("leader-down")
	done := make(chan []error)
	go func() {
		_, errs := addEach(atts)
		done <- errs
	}()
	e.Cluster.Members[lead].Stop(t)
	for _, err := range <-done {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	record(atts)
	newLead := e.Cluster.WaitLeader(t)
	checkAll("leader stopped")
	if err := e.Cluster.Members[lead].Restart(t); err != nil {
		t.Fatalf("restart old leader: %v", err)
	}
	e.Cluster.WaitLeader(t)
	t.Logf("leader %d stopped during ADDs; member %d took over", lead, newLead)

	delAll(t, all)
	for _, c := range cnis {
		checkDetached(t, e, c)
	}
}
