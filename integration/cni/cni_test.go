package cni_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/uspace-io/uspace/schema"
)

// The upstream README configs, unchanged but for deployment settings: ADD
// through libcni into a netns returns a result in the config's cniVersion
// with the host-side and container-side interfaces and the IPAM address;
// etcd holds the three intents and the agent's status (read with the real
// etcdctl); vppsim holds the memif in the bridge domain the config named.
// DEL removes all of it; a second DEL succeeds.
func TestUpstreamConfigsAddDel(t *testing.T) {
	e := newEnv(t, true)
	for _, tc := range []struct {
		name, conf, network, version string
		bd                           uint32
		vhost                        bool
	}{
		{"readme-bridgeName", readmeMemif, "memif-network", "0.3.1", 4, false},
		{"seed-bridgeId", seedMemif, "memif-network", "0.3.1", 4, false},
		{"head-NAD", headNAD, "userspace-vpp-net", "0.3.1", 12, false},
		{"vhostuser", vhostVPP, "vhost-network", "1.0.0", 7, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := e.netconf(tc.conf, nil)
			netns := newNS(t)
			id := "cnitool-" + strings.Repeat("ab", 10) + tc.name
			r := rt(id, netns.Path(), "net1")
			res, err := e.cni.AddNetworkList(bg(), list, r)
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			if res.Version() != tc.version {
				t.Errorf("result version %s, want %s (the config's)", res.Version(), tc.version)
			}
			cur, err := types100.NewResultFromResult(res)
			if err != nil {
				t.Fatal(err)
			}
			if len(cur.Interfaces) != 2 || cur.Interfaces[1].Name != "net1" || cur.Interfaces[1].Sandbox != netns.Path() ||
				cur.Interfaces[0].Sandbox != "" || cur.Interfaces[0].Name == "" || len(cur.Interfaces[0].Name) > 15 {
				t.Errorf("interfaces: %s", js(cur.Interfaces))
			}
			if len(cur.IPs) != 1 || cur.IPs[0].Interface == nil || *cur.IPs[0].Interface != 1 {
				t.Fatalf("ips: %s", js(cur.IPs))
			}
			ip := cur.IPs[0].Address.String()

			// etcd, with the real etcdctl.
			hostKey := schema.InterfaceKey(e.hostName, id, "net1")
			want := []string{
				schema.ContainerInterfaceKey(e.hostName, id, "net1"),
				schema.ContainerMetaKey(e.hostName, id),
				hostKey,
			}
			slices.Sort(want)
			if got := e.etcdctlKeys(schema.HostPrefix(e.hostName) + "interfaces/"); !slices.Equal(got, want[2:]) {
				t.Errorf("etcdctl interface keys %v, want %v", got, want[2:])
			}
			if got := e.etcdctlKeys(schema.ContainersPrefix(e.hostName)); !slices.Equal(got, want[:2]) {
				t.Errorf("etcdctl container keys %v, want %v", got, want[:2])
			}
			hi, err := schema.DecodeAs[schema.HostInterface]([]byte(e.etcdctlGet(hostKey)))
			if err != nil {
				t.Fatal(err)
			}
			ci, err := schema.DecodeAs[schema.ContainerInterface]([]byte(e.etcdctlGet(want[0])))
			if err != nil {
				t.Fatal(err)
			}
			meta, err := schema.DecodeAs[schema.ContainerMeta]([]byte(e.etcdctlGet(want[1])))
			if err != nil {
				t.Fatal(err)
			}
			if hi.Bridge != tc.bd || hi.NetType != schema.NetTypeBridge || hi.Network != tc.network {
				t.Errorf("host intent %s", js(hi))
			}
			if len(ci.IPs) != 1 || ci.IPs[0].Address != ip || ci.MAC != cur.Interfaces[1].Mac {
				t.Errorf("container intent %s, result IP %s", js(ci), ip)
			}
			if meta.Netns != netns.Path() || meta.PodNamespace != "default" || meta.PodName == "" || meta.PodUID == "" ||
				!slices.Equal(meta.Interfaces, []string{"net1"}) {
				t.Errorf("meta %s", js(meta))
			}
			st, err := schema.DecodeAs[schema.InterfaceStatus]([]byte(e.etcdctlGet(schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: e.hostName, Container: id, Interface: "net1"}))))
			if err != nil || !st.Ready || st.SwIfIndex == 0 {
				t.Errorf("status %s %v", js(st), err)
			}

			// vppsim: the interface, in bridge domain bd.
			snap := e.host.VPP.Snapshot()
			if tc.vhost {
				if len(snap.VhostUsers) != 1 || snap.VhostUsers[0].SockFilename != hi.Vhost.SocketPath || snap.VhostUsers[0].IsServer {
					t.Errorf("vhost-user in vppsim: %s (intent %s)", js(snap.VhostUsers), js(hi.Vhost))
				}
			} else {
				if len(snap.Memifs) != 1 || snap.Memifs[0].Role != "master" || snap.Memifs[0].Mode != "ethernet" || snap.Memifs[0].ID != hi.Memif.ID {
					t.Errorf("memif in vppsim: %s", js(snap.Memifs))
				}
				if ci.Memif.Role != schema.MemifSlave || ci.Memif.SocketPath != hi.Memif.SocketPath {
					t.Errorf("container memif %s", js(ci.Memif))
				}
			}
			if bd := findBD(snap.BridgeDomains, tc.bd); bd == nil || len(bd.Members) != 1 || bd.Members[0] != st.SwIfIndex {
				t.Errorf("bridge domain %d: %s", tc.bd, js(snap.BridgeDomains))
			}
			if got := e.ipamFiles(tc.network); len(got) != 1 {
				t.Errorf("IPAM reservations %v", got)
			}

			// DEL, and DEL again.
			for i := 0; i < 2; i++ {
				if err := e.cni.DelNetworkList(bg(), list, r); err != nil {
					t.Fatalf("DEL #%d: %v", i+1, err)
				}
			}
			if left := e.hostKeys(); len(left) != 0 {
				t.Errorf("left in etcd after DEL: %v", left)
			}
			snap = e.host.VPP.Snapshot()
			if len(snap.Memifs) != 0 || len(snap.VhostUsers) != 0 || findBD(snap.BridgeDomains, tc.bd) != nil {
				t.Errorf("left in vppsim after DEL: memifs %s vhost %s bds %s", js(snap.Memifs), js(snap.VhostUsers), js(snap.BridgeDomains))
			}
			if got := e.ipamFiles(tc.network); len(got) != 0 {
				t.Errorf("IPAM reservations after DEL %v", got)
			}
		})
	}
	// logFile and logLevel were honoured (head-NAD).
	b, err := os.ReadFile(e.confDir + "/plugin.log")
	if err != nil || !strings.Contains(string(b), "ADD done") || !strings.Contains(string(b), "level=DEBUG") {
		t.Errorf("plugin log: %v\n%s", err, b)
	}
}

func findBD(bds []vppsimBD, id uint32) *vppsimBD {
	for i := range bds {
		if bds[i].ID == id {
			return &bds[i]
		}
	}
	return nil
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Bad configs are rejected with a CNI error naming the field, before IPAM
// runs or anything is written.
func TestBadConfigsWriteNothing(t *testing.T) {
	e := newEnv(t, true)
	netns := newNS(t)
	for _, tc := range []struct {
		name, field string
		edit        func(m map[string]any)
	}{
		{"ovs-dpdk", "host.engine", func(m map[string]any) { sect(m, "host")["engine"] = "ovs-dpdk" }},
		{"unknown iftype", "host.iftype", func(m map[string]any) { sect(m, "host")["iftype"] = "veth" }},
		{"bridgeName", "host.bridge.bridgeName", func(m map[string]any) { sect(m, "host", "bridge")["bridgeName"] = "br-4" }},
		{"bridgeId type", "host.bridge.bridgeId", func(m map[string]any) {
			sect(m, "host")["bridge"] = map[string]any{"bridgeId": "4"}
		}},
		{"bridgeId range", "host.bridge.bridgeId", func(m map[string]any) {
			sect(m, "host")["bridge"] = map[string]any{"bridgeId": 1 << 33}
		}},
		{"same roles", "container.memif.role", func(m map[string]any) { sect(m, "container", "memif")["role"] = "master" }},
		{"socket too long", "host.memif.socketfile", func(m map[string]any) {
			sect(m, "host", "memif")["socketfile"] = strings.Repeat("x", 100) + ".sock"
		}},
		{"memif wrong type", "host.memif", func(m map[string]any) { sect(m, "host")["memif"] = "master" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := e.netconf(readmeMemif, tc.edit)
			_, err := e.cni.AddNetworkList(bg(), list, rt("bad-"+strings.ReplaceAll(tc.name, " ", "-"), netns.Path(), "net1"))
			if err == nil {
				t.Fatal("ADD accepted a bad config")
			}
			ce := cniError(t, err)
			if ce.Code != types.ErrInvalidNetworkConfig || !strings.Contains(ce.Msg, tc.field) {
				t.Errorf("code %d, message does not name %s: %s", ce.Code, tc.field, ce.Msg)
			}
			if left := e.hostKeys(); len(left) != 0 {
				t.Errorf("written to etcd: %v", left)
			}
			if got := e.ipamFiles("memif-network"); len(got) != 0 {
				t.Errorf("IPAM ran: %v", got)
			}
			if snap := e.host.VPP.Snapshot(); len(snap.Memifs) != 0 || len(snap.BridgeDomains) != 0 {
				t.Errorf("vppsim changed: %s %s", js(snap.Memifs), js(snap.BridgeDomains))
			}
		})
	}
}

// A config with two bad fields: ADD through libcni fails naming both, in
// multierror's list, and nothing runs.
func TestBadConfigListsEveryField(t *testing.T) {
	e := newEnv(t, true)
	netns := newNS(t)
	list := e.netconf(readmeMemif, func(m map[string]any) {
		sect(m, "host")["engine"] = "ovs-dpdk"
		sect(m, "host", "memif")["role"] = "boss"
	})
	_, err := e.cni.AddNetworkList(bg(), list, rt("bad-two", netns.Path(), "net1"))
	if err == nil {
		t.Fatal("ADD accepted a bad config")
	}
	ce := cniError(t, err)
	want := "invalid userspace network config: 2 errors occurred:\n\t* host.engine \"ovs-dpdk\": "
	if ce.Code != types.ErrInvalidNetworkConfig || !strings.HasPrefix(ce.Msg, want) || !strings.Contains(ce.Msg, "\n\t* host.memif.role \"boss\": ") {
		t.Errorf("code %d, message:\n%s\nwant both fields listed", ce.Code, ce.Msg)
	}
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("written to etcd: %v", left)
	}
	if got := e.ipamFiles("memif-network"); len(got) != 0 {
		t.Errorf("IPAM ran: %v", got)
	}
}

// sect returns the nested object at path, creating it.
func sect(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	return m
}

// etcd down: ADD fails within its timeout saying etcd is unreachable, and
// leaves nothing, neither in etcd nor in IPAM. The plugin reaches etcd
// through a proxy the test cuts: once while IPAM runs (after the plugin
// connected), once before ADD starts. To cut "while IPAM runs" the test
// holds host-local's own lock of the network (flock on
// <dataDir>/<network>/lock): host-local is started only after the plugin
// connected to etcd, and blocks on that lock before reserving. Once it is
// seen waiting (/proc/locks), the proxy is cut and the lock released:
// host-local reserves an IP, the plugin's transaction finds etcd gone and
// the rollback must release that IP.
func TestEtcdDownDuringAdd(t *testing.T) {
	e := newEnv(t, true)
	netns := newNS(t)
	proxy := newProxy(t, e.etcd.Endpoints[0])
	list := e.netconf(readmeMemif, func(m map[string]any) {
		sect(m, "uspace")["addTimeout"] = "4s"
		sect(m, "uspace", "etcd")["endpoints"] = []string{proxy.Endpoint()}
	})

	release := e.holdIPAMLock("memif-network")
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := e.cni.AddNetworkList(bg(), list, rt("etcd-dies", netns.Path(), "net1"))
		done <- err
	}()
	// Wait until host-local waits on the lock: the plugin connected to
	// etcd and started IPAM. ADD must not end before.
	var err error
	waiting := false
	for deadline := time.Now().Add(4 * time.Second); !waiting && time.Now().Before(deadline); {
		select {
		case err = <-done:
			release()
			t.Fatalf("ADD ended before IPAM ran: %v", err)
		case <-time.After(20 * time.Millisecond):
			waiting = e.ipamLockWaiters("memif-network") > 0
		}
	}
	if !waiting {
		release()
		t.Fatalf("host-local never waited on its lock (ADD: %v)", <-done)
	}
	proxy.Cut()
	release()
	err = <-done
	took := time.Since(start)
	if err == nil {
		t.Fatal("ADD succeeded with etcd gone")
	}
	// Within its timeout; the roll-back's floors (a leaked IP is worse
	// than a late error) may add a little.
	if took > 4*time.Second+1500*time.Millisecond {
		t.Errorf("ADD took %v with a 4s timeout", took)
	}
	if ce := cniError(t, err); !strings.Contains(ce.Msg, "etcd unreachable") {
		t.Errorf("error does not say etcd is unreachable: %v", err)
	}
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("left in etcd: %v", left)
	}
	if got := e.ipamFiles("memif-network"); len(got) != 0 {
		t.Errorf("IPAM not released: %v", got)
	}
	// host-local did reserve (it records the last IP it reserved and keeps
	// that on release): the rollback released it, not a failed IPAM.
	if _, err := os.Stat(filepath.Join(e.ipamDir, "memif-network", "last_reserved_ip.0")); err != nil {
		t.Errorf("host-local reserved nothing, etcd was not cut during IPAM: %v", err)
	}
	t.Logf("etcd dies during ADD: %v (after %v)", err, took)

	// etcd already unreachable: fails while connecting, before IPAM.
	start = time.Now()
	_, err = e.cni.AddNetworkList(bg(), list, rt("etcd-down", netns.Path(), "net1"))
	took = time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("ADD with etcd down: %v", err)
	}
	if took > 4*time.Second+time.Second {
		t.Errorf("ADD took %v with a 4s timeout", took)
	}
	if got := e.ipamFiles("memif-network"); len(got) != 0 {
		t.Errorf("IPAM ran: %v", got)
	}
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("left in etcd: %v", left)
	}
	if snap := e.host.VPP.Snapshot(); len(snap.Memifs) != 0 {
		t.Errorf("vppsim: %s", js(snap.Memifs))
	}
	t.Logf("etcd down before ADD: %v (after %v)", err, took)
}

// The agent is down (killed; its lease-bound registration still there for
// a few seconds, then gone): ADD times out cleanly, saying the agent did
// not report and whether it is registered, with intents and IPAM rolled
// back. When the agent comes back, ADD works.
func TestAgentDown(t *testing.T) {
	e := newEnv(t, true)
	e.host.Agent.Kill()
	list := e.netconf(readmeMemif, func(m map[string]any) { sect(m, "uspace")["addTimeout"] = "2s" })
	netns := newNS(t)

	start := time.Now()
	_, err := e.cni.AddNetworkList(bg(), list, rt("agent-down", netns.Path(), "net1"))
	took := time.Since(start)
	if err == nil {
		t.Fatal("ADD succeeded without an agent")
	}
	msg := cniError(t, err).Msg
	if !strings.Contains(msg, "did not report") || !strings.Contains(msg, schema.AgentKey(e.hostName)) {
		t.Errorf("error: %s", msg)
	}
	if took > 2*time.Second+1500*time.Millisecond {
		t.Errorf("ADD took %v with a 2s timeout", took)
	}
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("intents not rolled back: %v", left)
	}
	if got := e.ipamFiles("memif-network"); len(got) != 0 {
		t.Errorf("IPAM not released: %v", got)
	}
	t.Logf("agent down: %s", msg)

	// Once the lease expired the error says no agent is registered.
	eventually(t, 15*time.Second, "the agent's lease to expire", func() bool { return len(e.keys(schema.AgentKey(e.hostName))) == 0 })
	_, err = e.cni.AddNetworkList(bg(), list, rt("agent-gone", netns.Path(), "net1"))
	if err == nil || !strings.Contains(err.Error(), "no agent is registered") {
		t.Errorf("ADD with no registration: %v", err)
	}

	// STATUS says not available (code 50).
	list11 := e.netconf(strings.Replace(readmeMemif, `"cniVersion":"0.3.1"`, `"cniVersion":"1.1.0"`, 1), nil)
	if err := e.cni.GetStatusNetworkList(bg(), list11); err == nil || cniError(t, err).Code != 50 {
		t.Errorf("STATUS without agent: %v", err)
	}

	e.host.RestartAgent(t)
	if err := e.cni.GetStatusNetworkList(bg(), list11); err != nil {
		t.Errorf("STATUS with agent: %v", err)
	}
	if _, err := e.cni.AddNetworkList(bg(), list, rt("agent-back", netns.Path(), "net1")); err != nil {
		t.Fatalf("ADD after restart: %v", err)
	}
	if err := e.cni.DelNetworkList(bg(), list, rt("agent-back", netns.Path(), "net1")); err != nil {
		t.Fatal(err)
	}
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
}

// DEL of something never added, DEL after the netns is gone, DEL twice,
// DEL of a config that could never be added: all succeed.
func TestDelIdempotent(t *testing.T) {
	e := newEnv(t, true)
	list := e.netconf(readmeMemif, nil)
	if err := e.cni.DelNetworkList(bg(), list, rt("never-added", "/var/run/netns/never-existed", "net1")); err != nil {
		t.Errorf("DEL without ADD: %v", err)
	}
	bad := e.netconf(readmeMemif, func(m map[string]any) { sect(m, "host")["engine"] = "ovs-dpdk" })
	if err := e.cni.DelNetworkList(bg(), bad, rt("never-added", "", "net1")); err != nil {
		t.Errorf("DEL of an unaddable config: %v", err)
	}

	netns := newNS(t)
	path := netns.Path()
	r := rt("netns-gone", path, "net1")
	if _, err := e.cni.AddNetworkList(bg(), list, r); err != nil {
		t.Fatal(err)
	}
	// A second interface of the same container.
	r2 := rt("netns-gone", path, "net2")
	if _, err := e.cni.AddNetworkList(bg(), list, r2); err != nil {
		t.Fatal(err)
	}
	meta := e.meta("netns-gone")
	if !slices.Equal(meta.Interfaces, []string{"net1", "net2"}) {
		t.Errorf("meta interfaces %v", meta.Interfaces)
	}
	// The netns goes away before DEL.
	netns.Delete(t)
	if _, err := os.Stat(path); err == nil {
		t.Fatalf("netns %s still there", path)
	}
	if err := e.cni.DelNetworkList(bg(), list, r); err != nil {
		t.Fatalf("DEL with the netns gone: %v", err)
	}
	if meta := e.meta("netns-gone"); !slices.Equal(meta.Interfaces, []string{"net2"}) {
		t.Errorf("meta after one DEL: %v", meta.Interfaces)
	}
	for i := 0; i < 2; i++ {
		if err := e.cni.DelNetworkList(bg(), list, r2); err != nil {
			t.Fatalf("DEL net2 #%d: %v", i+1, err)
		}
	}
	// IPAM already released (a DEL with an empty cache and state).
	if err := e.cni.DelNetworkList(bg(), list, r); err != nil {
		t.Errorf("DEL after IPAM release: %v", err)
	}
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
	if snap := e.host.VPP.Snapshot(); len(snap.Memifs) != 0 {
		t.Errorf("vppsim: %s", js(snap.Memifs))
	}
}

// DEL's steps after the intents' removal each run whatever the other does,
// and every failure is reported together: with the host agent killed (its
// registration still there, so DEL waits for a removal that never comes)
// and IPAM failing, DEL fails listing both, not only IPAM's, and the IPAM
// release was tried without waiting out delTimeout first. A DEL repeated
// once IPAM works again releases the address.
func TestDelReportsEveryFailedStep(t *testing.T) {
	e := newEnv(t, true)
	list := e.netconf(readmeMemif, func(m map[string]any) { sect(m, "uspace")["delTimeout"] = "3s" })
	netns := newNS(t)
	r := rt("del-fails", netns.Path(), "net1")
	if _, err := e.cni.AddNetworkList(bg(), list, r); err != nil {
		t.Fatal(err)
	}
	e.host.Agent.Kill()
	// host-local cannot open its store: its data dir is a file now.
	dir := filepath.Join(e.ipamDir, "memif-network")
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	err := e.cni.DelNetworkList(bg(), list, r)
	took := time.Since(start)
	if err == nil {
		t.Fatal("DEL succeeded with IPAM failing")
	}
	msg := cniError(t, err).Msg
	for _, want := range []string{"DEL: 2 errors occurred:\n", "\n\t* releasing IPAM (host-local): ", "\n\t* host agent did not confirm the removal"} {
		if !strings.Contains(msg, want) {
			t.Errorf("DEL's error lacks %q:\n%s", want, msg)
		}
	}
	if took > 3*time.Second+2*time.Second {
		t.Errorf("DEL took %v: the steps did not run side by side", took)
	}
	for _, k := range e.keys(schema.HostPrefix(e.hostName)) {
		if k != schema.AgentKey(e.hostName) {
			t.Errorf("intent left: %s", k)
		}
	}
	t.Logf("DEL after %v: %s", took, msg)

	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	if err := e.cni.DelNetworkList(bg(), list, r); err != nil {
		t.Fatalf("DEL repeated: %v", err)
	}
	if got := e.ipamFiles("memif-network"); len(got) != 0 {
		t.Errorf("IPAM not released: %v", got)
	}
}

func (e *env) meta(id string) *schema.ContainerMeta {
	e.t.Helper()
	kv, err := e.etcd.Store.Get(bg(), schema.ContainerMetaKey(e.hostName, id))
	if err != nil || kv == nil {
		e.t.Fatalf("meta of %s: %v %v", id, kv, err)
	}
	m, err := schema.DecodeAs[schema.ContainerMeta](kv.Value)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// A repeated ADD returns the same result, with or without IPAM: with it,
// the plugin answers from the intents in place before asking IPAM again
// (the real host-local refuses a second allocation for the same container
// ID and ifname: "duplicate allocation is not allowed"). An ADD that would
// change the attachment is refused by the plugin's intent check, before
// IPAM. Neither touches the first attachment: its intents, nor its IPAM
// reservation.
func TestRepeatAdd(t *testing.T) { dataplanes(t, testRepeatAdd) }

func testRepeatAdd(t *testing.T, e *env) {
	netns := newNS(t)
	noIPAM := e.netconf(readmeMemif, func(m map[string]any) { delete(m, "ipam"); m["cniVersion"] = "1.0.0" })
	r := rt("repeat", netns.Path(), "net1")
	first, err := e.cni.AddNetworkList(bg(), noIPAM, r)
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.cni.AddNetworkList(bg(), noIPAM, r)
	if err != nil {
		t.Fatalf("repeated ADD: %v", err)
	}
	if js(first) != js(second) {
		t.Errorf("results differ:\n%s\n%s", js(first), js(second))
	}
	if err := e.cni.DelNetworkList(bg(), noIPAM, r); err != nil {
		t.Fatal(err)
	}

	withIPAM := e.netconf(readmeMemif, nil)
	res, err := e.cni.AddNetworkList(bg(), withIPAM, r)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := types100.NewResultFromResult(res)
	if err != nil || len(cur.IPs) != 1 {
		t.Fatalf("result %s: %v", js(res), err)
	}
	ip := cur.IPs[0].Address.IP.String()
	if got := e.ipamFiles("memif-network"); !slices.Equal(got, []string{ip}) || e.ipamOwner("memif-network", ip) != "repeat/net1" {
		t.Fatalf("IPAM reservations %v (owner of %s: %q)", got, ip, e.ipamOwner("memif-network", ip))
	}
	before := e.hostKVs()
	unchanged := func(what string) {
		t.Helper()
		if after := e.hostKVs(); !maps.Equal(before, after) {
			t.Errorf("%s changed the attachment in etcd:\n%v\n->\n%v", what, before, after)
		}
		if got := e.ipamFiles("memif-network"); !slices.Equal(got, []string{ip}) || e.ipamOwner("memif-network", ip) != "repeat/net1" {
			t.Errorf("%s changed IPAM: reservations %v, want %s held by repeat/net1 (owner %q)", what, got, ip, e.ipamOwner("memif-network", ip))
		}
	}

	// The same ADD again: the same result, IPAM not asked again.
	again, err := e.cni.AddNetworkList(bg(), withIPAM, r)
	if err != nil {
		t.Errorf("repeated ADD with host-local: %v", err)
	} else if js(again) != js(res) {
		t.Errorf("repeated ADD with host-local, results differ:\n%s\n%s", js(res), js(again))
	}
	unchanged("the repeated ADD")

	// A different bridge with the same IPAM: refused before IPAM.
	otherBridge := e.netconf(readmeMemif, func(m map[string]any) { sect(m, "host", "bridge")["bridgeName"] = "5" })
	if _, err := e.cni.AddNetworkList(bg(), otherBridge, r); err == nil || !strings.Contains(err.Error(), "already exists in etcd with different") {
		t.Errorf("changing ADD with host-local: %v", err)
	}
	unchanged("the changing ADD with IPAM")

	// A different bridge and no IPAM: IPAM does not stop it, the plugin's
	// intent check does, and it must not release the first ADD's address
	// (same container ID and ifname).
	otherNoIPAM := e.netconf(readmeMemif, func(m map[string]any) {
		delete(m, "ipam")
		sect(m, "host", "bridge")["bridgeName"] = "5"
	})
	if _, err := e.cni.AddNetworkList(bg(), otherNoIPAM, r); err == nil || !strings.Contains(err.Error(), "already exists in etcd with different") {
		t.Errorf("changing ADD without IPAM: %v", err)
	}
	unchanged("the changing ADD without IPAM")

	if err := e.cni.DelNetworkList(bg(), withIPAM, r); err != nil {
		t.Fatal(err)
	}
	if got := e.ipamFiles("memif-network"); len(got) != 0 {
		t.Errorf("IPAM after DEL: %v", got)
	}
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("left after DEL: %v", left)
	}
}

// hostKVs is hostKeys with the values.
func (e *env) hostKVs() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, k := range e.hostKeys() {
		kv, err := e.etcd.Store.Get(bg(), k)
		if err != nil || kv == nil {
			e.t.Fatalf("get %s: %v %v", k, kv, err)
		}
		out[k] = string(kv.Value)
	}
	return out
}

// 50 concurrent ADDs, then 50 concurrent DELs: every ADD gets its own
// socket and address, and nothing is left in etcd, vppsim or IPAM.
func TestConcurrentAddDel(t *testing.T) {
	if testing.Short() {
		t.Skip("50 plugin processes")
	}
	e := newEnv(t, true)
	list := e.netconf(readmeMemif, func(m map[string]any) { sect(m, "uspace")["addTimeout"] = "60s" })
	const n = 50
	nss := make([]string, n)
	for i := range nss {
		nss[i] = newNS(t).Path()
	}

	// cnitool's IDs: all share "cnitool-" and differ after.
	id := func(i int) string { return fmt.Sprintf("cnitool-%04x%016x", 0xbeef, i) }
	run := func(verb string, f func(i int) error) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = f(i) }()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("%s %s: %v", verb, id(i), err)
			}
		}
		return time.Since(start)
	}
	results := make([]types.Result, n)
	addTook := run("ADD", func(i int) error {
		var err error
		results[i], err = e.cni.AddNetworkList(bg(), list, rt(id(i), nss[i], "net1"))
		return err
	})
	if t.Failed() {
		t.FailNow()
	}
	sockets, ips := map[string]bool{}, map[string]bool{}
	for _, r := range results {
		cur, _ := types100.NewResultFromResult(r)
		sockets[cur.Interfaces[0].Name] = true
		ips[cur.IPs[0].Address.String()] = true
	}
	if len(sockets) != n || len(ips) != n {
		t.Errorf("%d distinct sockets, %d distinct IPs for %d ADDs", len(sockets), len(ips), n)
	}
	snap := e.host.VPP.Snapshot()
	if len(snap.Memifs) != n {
		t.Errorf("vppsim has %d memifs, want %d", len(snap.Memifs), n)
	}
	if bd := findBD(snap.BridgeDomains, 4); bd == nil || len(bd.Members) != n {
		t.Errorf("bridge domain 4: %s", js(findBD(snap.BridgeDomains, 4)))
	}
	delTook := run("DEL", func(i int) error { return e.cni.DelNetworkList(bg(), list, rt(id(i), nss[i], "net1")) })
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("left in etcd: %d keys, e.g. %v", len(left), left[:min(3, len(left))])
	}
	snap = e.host.VPP.Snapshot()
	if len(snap.Memifs) != 0 || len(snap.Interfaces) != 1 || len(snap.BridgeDomains) != 0 || len(snap.MemifSockets) > 1 {
		t.Errorf("left in vppsim: %d memifs, interfaces %s, bds %s, sockets %s", len(snap.Memifs), js(snap.Interfaces), js(snap.BridgeDomains), js(snap.MemifSockets))
	}
	if got := e.ipamFiles("memif-network"); len(got) != 0 {
		t.Errorf("IPAM left: %v", got)
	}
	t.Logf("%d concurrent ADDs took %v, DELs %v", n, addTook, delTook)
}

// CHECK passes on a fresh attachment and then names the drift: an address
// changed in the container-side intent, a missing intent, an agent error.
func TestCheckDrift(t *testing.T) {
	e := newEnv(t, true)
	list := e.netconf(strings.Replace(readmeMemif, `"cniVersion":"0.3.1"`, `"cniVersion":"1.1.0"`, 1), nil)
	netns := newNS(t)
	r := rt("check", netns.Path(), "net1")
	if _, err := e.cni.AddNetworkList(bg(), list, r); err != nil {
		t.Fatal(err)
	}
	if err := e.cni.CheckNetworkList(bg(), list, r); err != nil {
		t.Fatalf("CHECK right after ADD: %v", err)
	}

	ctrKey := schema.ContainerInterfaceKey(e.hostName, "check", "net1")
	kv, _ := e.etcd.Store.Get(bg(), ctrKey)
	ci, _ := schema.DecodeAs[schema.ContainerInterface](kv.Value)
	orig := *ci
	ci.IPs = []schema.IPAddress{{Address: "10.56.217.250/24", Gateway: "10.56.217.1"}}
	e.put(ctrKey, ci)
	err := e.cni.CheckNetworkList(bg(), list, r)
	if err == nil || !strings.Contains(err.Error(), "ips[0].address") || !strings.Contains(err.Error(), "10.56.217.250/24") {
		t.Errorf("CHECK with a changed address: %v", err)
	}
	e.put(ctrKey, &orig)
	if err := e.cni.CheckNetworkList(bg(), list, r); err != nil {
		t.Errorf("CHECK after repair: %v", err)
	}

	// The host-side intent changed behind the plugin's back: the agent
	// applies it, CHECK reports the bridge domain the config disagrees with.
	hostKey := schema.InterfaceKey(e.hostName, "check", "net1")
	kv, _ = e.etcd.Store.Get(bg(), hostKey)
	hi, _ := schema.DecodeAs[schema.HostInterface](kv.Value)
	hi.Bridge = 9
	e.put(hostKey, hi)
	err = e.cni.CheckNetworkList(bg(), list, r)
	if err == nil || !strings.Contains(err.Error(), "bridgeDomain is 9, want 4") {
		t.Errorf("CHECK with a changed bridge: %v", err)
	}

	// The container side is gone.
	if _, err := e.etcd.Store.Apply(bg(), storeDelete(ctrKey)); err != nil {
		t.Fatal(err)
	}
	err = e.cni.CheckNetworkList(bg(), list, r)
	if err == nil || !strings.Contains(err.Error(), "container-side intent") || !strings.Contains(err.Error(), "missing") {
		t.Errorf("CHECK with the container side gone: %v", err)
	}
	if err := e.cni.DelNetworkList(bg(), list, r); err != nil {
		t.Fatal(err)
	}
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
}

func (e *env) put(key string, o schema.Object) {
	e.t.Helper()
	b, err := schema.Encode(o)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.etcd.Store.Apply(bg(), storePut(key, b)); err != nil {
		e.t.Fatal(err)
	}
}

// GC: with cni.dev/valid-attachments, the intents of this network on this
// host for attachments not listed are deleted and their IPs released;
// other networks are untouched. Without the key (cnitool gc) GC deletes
// nothing itself.
func TestGC(t *testing.T) {
	e := newEnv(t, true)
	conf11 := strings.Replace(readmeMemif, `"cniVersion":"0.3.1"`, `"cniVersion":"1.1.0"`, 1)
	list := e.netconf(conf11, nil)
	other := e.netconf(conf11, func(m map[string]any) {
		m["name"] = "other-network"
		sect(m, "host", "bridge")["bridgeName"] = "5"
	})
	netns := newNS(t)
	// A runtime that lost its cache: attachments libcni's GC cannot see.
	lost := libcni.NewCNIConfigWithCacheDir([]string{e.bin}, t.TempDir(), nil)
	for _, a := range []struct {
		c    *libcni.CNIConfig
		l    *libcni.NetworkConfigList
		id   string
		name string
	}{
		{e.cni, list, "keep", "net1"},
		// keep's second network: its meta names only the first.
		{e.cni, other, "keep", "net2"},
		{lost, list, "stale", "net1"},
		{lost, list, "stale", "net2"},
		{lost, other, "other", "net1"},
	} {
		if _, err := a.c.AddNetworkList(bg(), a.l, rt(a.id, netns.Path(), a.name)); err != nil {
			t.Fatalf("ADD %s/%s: %v", a.id, a.name, err)
		}
	}
	if got := len(e.ipamFiles("memif-network")); got != 3 {
		t.Fatalf("%d reservations", got)
	}

	// cnitool gc: no valid-attachments key (and here an empty libcni
	// cache, so libcni itself DELs nothing): the plugin deletes nothing.
	empty := libcni.NewCNIConfigWithCacheDir([]string{e.bin}, t.TempDir(), nil)
	if err := empty.GCNetworkList(bg(), list, nil); err != nil {
		t.Fatalf("GC without list: %v", err)
	}
	for _, id := range []string{"keep", "stale", "other"} {
		if len(e.keys(schema.ContainerInterfacesPrefix(e.hostName, id))) == 0 {
			t.Errorf("GC without a list deleted %s", id)
		}
	}

	// Runtime GC: only "keep" is valid.
	valid := &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: "keep", IfName: "net1"}}}
	if err := e.cni.GCNetworkList(bg(), list, valid); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if got := e.keys(schema.ContainerInterfacesPrefix(e.hostName, "stale")); len(got) != 0 {
		t.Errorf("stale host intents left: %v", got)
	}
	if got := e.keys(schema.ContainerPrefix(e.hostName, "stale")); len(got) != 0 {
		t.Errorf("stale container intents left: %v", got)
	}
	if len(e.keys(schema.ContainerInterfacesPrefix(e.hostName, "keep"))) != 2 || len(e.keys(schema.ContainerInterfacesPrefix(e.hostName, "other"))) != 1 {
		t.Errorf("GC deleted a valid attachment or another network's")
	}
	if got := e.keys(schema.ContainerPrefix(e.hostName, "keep")); len(got) != 3 {
		t.Errorf("keep's intents after GC (want meta and both container sides): %v", got)
	}
	if got := e.ipamFiles("memif-network"); len(got) != 1 {
		t.Errorf("IPAM after GC: %v", got)
	}
	eventually(t, 10*time.Second, "vppsim to drop the stale memifs", func() bool { return len(e.host.VPP.Snapshot().Memifs) == 3 })

	for _, d := range []struct {
		l          *libcni.NetworkConfigList
		id, ifname string
	}{{list, "keep", "net1"}, {other, "keep", "net2"}, {other, "other", "net1"}} {
		if err := e.cni.DelNetworkList(bg(), d.l, rt(d.id, netns.Path(), d.ifname)); err != nil {
			t.Fatal(err)
		}
	}
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
}

// STATUS: fine with etcd and a registered agent; code 50 when etcd is
// unreachable (the agent-absent case is in TestAgentDown).
func TestStatus(t *testing.T) {
	e := newEnv(t, true)
	conf11 := strings.Replace(readmeMemif, `"cniVersion":"0.3.1"`, `"cniVersion":"1.1.0"`, 1)
	if err := e.cni.GetStatusNetworkList(bg(), e.netconf(conf11, nil)); err != nil {
		t.Errorf("STATUS: %v", err)
	}
	down := e.netconf(conf11, func(m map[string]any) {
		sect(m, "uspace", "etcd")["endpoints"] = []string{"127.0.0.1:1"}
		sect(m, "uspace", "etcd")["dialTimeout"] = "1s"
	})
	start := time.Now()
	err := e.cni.GetStatusNetworkList(bg(), down)
	if err == nil || cniError(t, err).Code != 50 || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("STATUS with etcd unreachable: %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("STATUS took %v", took)
	}
	other := e.netconf(conf11, func(m map[string]any) { sect(m, "uspace")["host"] = "node-without-agent" })
	if err := e.cni.GetStatusNetworkList(bg(), other); err == nil || cniError(t, err).Code != 50 || !strings.Contains(err.Error(), "node-without-agent") {
		t.Errorf("STATUS for a host without agent: %v", err)
	}
}

// The uspace section can come entirely from /etc/uspace/uspace.conf (here
// USPACE_CONFIG) and the environment: the network config stays exactly
// upstream's (but for the test's shared and IPAM dirs).
func TestDefaultsFromFile(t *testing.T) {
	e := newEnv(t, true)
	f := t.TempDir() + "/uspace.conf"
	b, _ := json.Marshal(map[string]any{"etcd": map[string]any{"endpoints": e.etcd.Endpoints}, "addTimeout": "10s"})
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("USPACE_CONFIG", f)
	t.Setenv("USPACE_HOST", e.hostName)
	list := e.netconf(readmeMemif, func(m map[string]any) { delete(m, "uspace") })
	netns := newNS(t)
	if _, err := e.cni.AddNetworkList(bg(), list, rt("defaults", netns.Path(), "net1")); err != nil {
		t.Fatalf("ADD with defaults from file: %v", err)
	}
	if len(e.keys(schema.ContainerInterfacesPrefix(e.hostName, "defaults"))) != 1 {
		t.Error("intent not written under USPACE_HOST")
	}
	if err := e.cni.DelNetworkList(bg(), list, rt("defaults", netns.Path(), "net1")); err != nil {
		t.Fatal(err)
	}
}

// A repeated ADD that fails (here: the agent is down and the earlier
// status was lost) leaves the earlier ADD's intents alone: they are not
// this ADD's to roll back. The runtime's DEL removes them. (With
// host-local IPAM a repeat fails earlier, at its duplicate allocation.)
func TestRepeatedAddFailureKeepsTheFirst(t *testing.T) {
	e := newEnv(t, true)
	list := e.netconf(readmeMemif, func(m map[string]any) {
		delete(m, "ipam")
		sect(m, "uspace")["addTimeout"] = "2s"
	})
	netns := newNS(t)
	rc := rt("repeat", netns.Path(), "net1")
	if _, err := e.cni.AddNetworkList(bg(), list, rc); err != nil {
		t.Fatal(err)
	}
	e.host.Agent.Kill()
	if _, err := e.etcd.Store.Apply(bg(), storeDelete(schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: e.hostName, Container: "repeat", Interface: "net1"}))); err != nil {
		t.Fatal(err)
	}
	before := e.hostKeys()
	_, err := e.cni.AddNetworkList(bg(), list, rc)
	if err == nil || !strings.Contains(err.Error(), "did not report") {
		t.Fatalf("repeated ADD without an agent or a status: %v", err)
	}
	if after := e.hostKeys(); !slices.Equal(before, after) {
		t.Errorf("the failed repeat changed the first ADD's intents: %v -> %v", before, after)
	}
	e.host.RestartAgent(t)
	if err := e.cni.DelNetworkList(bg(), list, rc); err != nil {
		t.Fatal(err)
	}
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
}

// ADD of one interface and DEL of another of the same container, racing:
// they serialise through the transaction guards on the container's meta,
// so whichever order they land in, the meta lists exactly the interfaces
// whose intents exist, and nothing is left after the last DEL.
func TestSameContainerAddDelRace(t *testing.T) {
	e := newEnv(t, true)
	list := e.netconf(readmeMemif, func(m map[string]any) { sect(m, "uspace")["addTimeout"] = "30s" })
	netns := newNS(t).Path()
	const id = "race"
	for round := range 5 {
		if _, err := e.cni.AddNetworkList(bg(), list, rt(id, netns, "net1")); err != nil {
			t.Fatalf("round %d: ADD net1: %v", round, err)
		}
		var wg sync.WaitGroup
		var addErr, delErr error
		wg.Add(2)
		go func() { defer wg.Done(); _, addErr = e.cni.AddNetworkList(bg(), list, rt(id, netns, "net2")) }()
		go func() { defer wg.Done(); delErr = e.cni.DelNetworkList(bg(), list, rt(id, netns, "net1")) }()
		wg.Wait()
		if addErr != nil || delErr != nil {
			t.Fatalf("round %d: ADD net2: %v; DEL net1: %v", round, addErr, delErr)
		}
		m := e.meta(id)
		if !slices.Equal(m.Interfaces, []string{"net2"}) {
			t.Fatalf("round %d: meta lists %v, want [net2]", round, m.Interfaces)
		}
		if got := e.keys(schema.ContainerInterfacesPrefix(e.hostName, id)); len(got) != 1 || !strings.HasSuffix(got[0], "/net2") {
			t.Fatalf("round %d: host-side intents %v, want net2 only", round, got)
		}
		if err := e.cni.DelNetworkList(bg(), list, rt(id, netns, "net2")); err != nil {
			t.Fatal(err)
		}
		if left := e.hostKeys(); len(left) != 0 {
			t.Fatalf("round %d: left: %v", round, left)
		}
	}
}

// etcd is lost after the intents were committed, while ADD waits for the
// agent: the roll-back cannot reach etcd either, and the error says so.
// The DEL a runtime sends after a failed ADD (CNI spec) removes the rest.
func TestEtcdLostAfterCommit(t *testing.T) {
	e := newEnv(t, true)
	netns := newNS(t)
	e.host.Agent.Kill() // nothing reports: the ADD waits
	proxy := newProxy(t, e.etcd.Endpoints[0])
	viaProxy := e.netconf(readmeMemif, func(m map[string]any) {
		sect(m, "uspace")["addTimeout"] = "4s"
		sect(m, "uspace", "etcd")["endpoints"] = []string{proxy.Endpoint()}
	})
	rc := rt("lost", netns.Path(), "net1")
	done := make(chan error, 1)
	go func() {
		_, err := e.cni.AddNetworkList(bg(), viaProxy, rc)
		done <- err
	}()
	eventually(t, 4*time.Second, "the ADD's intents", func() bool {
		return len(e.keys(schema.ContainerInterfacesPrefix(e.hostName, "lost"))) == 1
	})
	proxy.Cut()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "rollback incomplete") || !strings.Contains(err.Error(), "IPAM not released") {
		t.Fatalf("ADD with etcd lost after its commit: %v", err)
	}
	// The rule DEL follows: the intents that may still hold the address
	// keep it allocated, or IPAM could hand it out twice.
	if got := e.ipamFiles("memif-network"); len(got) != 1 {
		t.Errorf("IPAM allocations after a roll-back that could not delete the intents: %v, want the one kept", got)
	}
	e.host.RestartAgent(t)
	if err := e.cni.DelNetworkList(bg(), e.netconf(readmeMemif, nil), rc); err != nil {
		t.Fatalf("DEL after the failed ADD: %v", err)
	}
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("left after DEL: %v", left)
	}
	if got := e.ipamFiles("memif-network"); len(got) != 0 {
		t.Errorf("IPAM not released by the DEL: %v", got)
	}
	if snap := e.host.VPP.Snapshot(); len(snap.Memifs) != 0 {
		t.Errorf("vppsim: %s", js(snap.Memifs))
	}
}

// A VPP that is reconnecting is a transient error: ADD waits through it
// (the status says retrying) and succeeds once VPP is back within the
// timeout; when it stays away ADD answers "try again later" (11) with the
// agent's error, rolled back. A terminal error fails at once.
func TestAddWaitsThroughTransientErrors(t *testing.T) {
	e := newEnv(t, true)
	netns := newNS(t)
	list := e.netconf(readmeMemif, func(m map[string]any) { sect(m, "uspace")["addTimeout"] = "20s" })
	if err := e.host.VPP.Stop(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.cni.AddNetworkList(bg(), list, rt("vpp-back", netns.Path(), "net1"))
		done <- err
	}()
	k, err := schema.ParseKey(schema.InterfaceKey(e.hostName, "vpp-back", "net1"))
	if err != nil {
		t.Fatal(err)
	}
	statusKey := schema.StatusKey(k)
	eventually(t, 15*time.Second, "a retrying status", func() bool {
		kv, err := e.etcd.Store.Get(bg(), statusKey)
		if err != nil || kv == nil {
			return false
		}
		s, err := schema.DecodeAs[schema.InterfaceStatus](kv.Value)
		return err == nil && s.Retrying && !s.Ready
	})
	if err := e.host.VPP.Start(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("ADD through a VPP reconnect: %v", err)
	}
	if err := e.cni.DelNetworkList(bg(), list, rt("vpp-back", netns.Path(), "net1")); err != nil {
		t.Fatal(err)
	}

	if err := e.host.VPP.Stop(); err != nil {
		t.Fatal(err)
	}
	short := e.netconf(readmeMemif, func(m map[string]any) { sect(m, "uspace")["addTimeout"] = "3s" })
	_, err = e.cni.AddNetworkList(bg(), short, rt("vpp-gone", netns.Path(), "net1"))
	if ce := cniError(t, err); ce.Code != types.ErrTryAgainLater || !strings.Contains(ce.Msg, "still retrying") || !strings.Contains(ce.Msg, "not connected") {
		t.Fatalf("ADD while VPP stays away: %v", err)
	}
	if left := e.keys(schema.HostPrefix(e.hostName) + "interfaces/"); len(left) != 0 {
		t.Errorf("intents not rolled back: %v", left)
	}
	// The agent removes the status once it can look at VPP again.
	if err := e.host.VPP.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the rolled-back attachment's status to go", func() bool { return len(e.hostKeys()) == 0 })
	if got := e.ipamFiles("memif-network"); len(got) != 0 {
		t.Errorf("IPAM not released: %v", got)
	}
}
