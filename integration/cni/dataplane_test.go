package cni_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/cni"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/schema"
)

// These tests read and change the host's VPP only through its binary API
// socket, as an operator's tool does, so each runs unchanged against
// vppsim and against a real VPP.

// dataplanes runs f once per host dataplane: vppsim, and real VPP 25.02
// where it is installed.
func dataplanes(t *testing.T, f func(t *testing.T, e *env)) {
	t.Run("vppsim", func(t *testing.T) { f(t, newEnv(t, true)) })
	t.Run("vpp", func(t *testing.T) {
		realdp.NeedVPP(t)
		f(t, newEnvOn(t, harness.HostOptions{RealVPP: true}))
	})
}

// vppClient connects to the host's VPP as a second API client.
func (e *env) vppClient() *vpp.Client {
	e.t.Helper()
	c := vpp.Dial(vpp.Config{Socket: e.host.VPPSocket, ClientName: "uspace-test-operator"})
	e.t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		e.t.Fatalf("connect to the host's VPP: %v", err)
	}
	return c
}

// vppState is what the host's VPP holds, as its dumps say.
type vppState struct {
	Memifs  []vpp.Memif
	Sockets []vpp.MemifSocket
	BDs     []vpp.BridgeDomain
}

func (e *env) vppState(c *vpp.Client) vppState {
	e.t.Helper()
	var s vppState
	var err error
	if s.Memifs, err = c.Memifs(bg()); err != nil {
		e.t.Fatal(err)
	}
	if s.Sockets, err = c.MemifSockets(bg()); err != nil {
		e.t.Fatal(err)
	}
	if s.BDs, err = c.BridgeDomains(bg()); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// empty reports what a failed or deleted attachment left in VPP: any
// memif, any socket filename but VPP's default (id 0), any bridge domain.
func (s vppState) leftovers() string {
	var left []string
	for _, m := range s.Memifs {
		left = append(left, "memif "+m.Name)
	}
	for _, so := range s.Sockets {
		if so.ID != 0 {
			left = append(left, "socket filename "+so.Filename)
		}
	}
	for _, bd := range s.BDs {
		left = append(left, "bridge domain "+js(bd.ID))
	}
	return strings.Join(left, ", ")
}

// assertNothingLeft checks etcd, IPAM and VPP after a failed ADD or a DEL.
func (e *env) assertNothingLeft(c *vpp.Client, network string) {
	e.t.Helper()
	if left := e.hostKeys(); len(left) != 0 {
		e.t.Errorf("left in etcd: %v", left)
	}
	if got := e.ipamFiles(network); len(got) != 0 {
		e.t.Errorf("IPAM reservations left: %v", got)
	}
	if left := e.vppState(c).leftovers(); left != "" {
		e.t.Errorf("left in VPP: %s", left)
	}
}

func conf11(conf string) string {
	return strings.Replace(conf, `"cniVersion":"0.3.1"`, `"cniVersion":"1.1.0"`, 1)
}

// Defect 1: memif mode "ip" on both ends. The agent must not set a MAC on
// an IP-mode memif (VPP answers -9 Unimplemented); the result reports no
// MAC for it; CHECK and DEL work.
func TestMemifIPMode(t *testing.T) {
	dataplanes(t, func(t *testing.T, e *env) {
		c := e.vppClient()
		list := e.netconf(conf11(readmeMemif), func(m map[string]any) {
			sect(m, "host", "memif")["mode"] = "ip"
			sect(m, "container", "memif")["mode"] = "ip"
		})
		netns := newNS(t)
		r := rt("ipmode", netns.Path(), "net1")
		res, err := e.cni.AddNetworkList(bg(), list, r)
		if err != nil {
			t.Fatalf("ADD of an IP-mode memif: %v", err)
		}
		cur, _ := types100.NewResultFromResult(res)
		if cur.Interfaces[0].Mac != "" || cur.Interfaces[1].Mac != "" {
			t.Errorf("IP-mode memif ends with a MAC in the result: %s", js(cur.Interfaces))
		}
		st := e.vppState(c)
		if len(st.Memifs) != 1 || st.Memifs[0].Mode != vpp.MemifIP || !st.Memifs[0].AdminUp {
			t.Errorf("memifs in VPP: %s", js(st.Memifs))
		}
		ci := e.containerIntent("ipmode", "net1")
		if ci.Memif.Mode != schema.MemifIP || ci.MAC != "" {
			t.Errorf("container intent %s", js(ci))
		}
		if err := e.cni.CheckNetworkList(bg(), list, r); err != nil {
			t.Errorf("CHECK: %v", err)
		}
		if err := e.cni.DelNetworkList(bg(), list, r); err != nil {
			t.Fatal(err)
		}
		e.assertNothingLeft(c, "memif-network")
	})
}

// fileSockets opts a network out of abstract memif sockets: socket files
// in sharedDir, which these tests move, clean or block.
func fileSockets(m map[string]any) { sect(m, "uspace")["memifSocket"] = "file" }

// Defect 2: a sharedDir written with a trailing slash (or "//", "/./") is
// cleaned, not rejected: the socket lives in the cleaned directory, and
// CHECK and DEL with the same config agree with the ADD.
func TestSharedDirCleaned(t *testing.T) {
	dataplanes(t, func(t *testing.T, e *env) {
		c := e.vppClient()
		for i, dir := range []string{e.host.SharedDir + "/", strings.Replace(e.host.SharedDir, "/", "//", 1) + "/./"} {
			list := e.netconf(conf11(readmeMemif), func(m map[string]any) { m["sharedDir"] = dir; fileSockets(m) })
			netns := newNS(t)
			id := "shared" + js(i)
			r := rt(id, netns.Path(), "net1")
			res, err := e.cni.AddNetworkList(bg(), list, r)
			if err != nil {
				t.Fatalf("ADD with sharedDir %q: %v", dir, err)
			}
			hi := e.hostIntent(id, "net1")
			if filepath.Dir(hi.Memif.SocketPath) != e.host.SharedDir {
				t.Errorf("sharedDir %q: socket %s, want it in %s", dir, hi.Memif.SocketPath, e.host.SharedDir)
			}
			cur, _ := types100.NewResultFromResult(res)
			if cur.Interfaces[0].SocketPath != hi.Memif.SocketPath {
				t.Errorf("result socketPath %q, intent %q", cur.Interfaces[0].SocketPath, hi.Memif.SocketPath)
			}
			if err := e.cni.CheckNetworkList(bg(), list, r); err != nil {
				t.Errorf("CHECK: %v", err)
			}
			if err := e.cni.DelNetworkList(bg(), list, r); err != nil {
				t.Fatal(err)
			}
		}
		e.assertNothingLeft(c, "memif-network")
	})
}

// Defect 3: ADD into a network namespace that does not exist (or a path
// that is no namespace) fails before IPAM, and leaves nothing.
func TestAddMissingNetns(t *testing.T) {
	dataplanes(t, func(t *testing.T, e *env) {
		c := e.vppClient()
		list := e.netconf(readmeMemif, nil)
		notNS := filepath.Join(t.TempDir(), "not-a-netns")
		if err := os.WriteFile(notNS, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/var/run/netns/uspace-missing-" + newNSName(), notNS} {
			_, err := e.cni.AddNetworkList(bg(), list, rt("nonetns", path, "net1"))
			if err == nil {
				t.Fatalf("ADD into %s succeeded", path)
			}
			if ce := cniError(t, err); ce.Code != types.ErrUnknownContainer || !strings.Contains(ce.Msg, "CNI_NETNS "+path) {
				t.Errorf("ADD into %s: code %d %q", path, ce.Code, ce.Msg)
			}
			e.assertNothingLeft(c, "memif-network")
		}
	})
}

// Defect 8: a container attached to two networks (Multus: net1, net2)
// has both in its meta; DEL of one drops its entry.
func TestMetaNetworks(t *testing.T) {
	dataplanes(t, func(t *testing.T, e *env) {
		c := e.vppClient()
		first := e.netconf(readmeMemif, nil)
		second := e.netconf(readmeMemif, func(m map[string]any) {
			m["name"] = "second-network"
			sect(m, "host", "bridge")["bridgeName"] = "5"
			sect(m, "ipam")["subnet"] = "10.57.0.0/24"
			delete(sect(m, "ipam"), "rangeStart")
			delete(sect(m, "ipam"), "rangeEnd")
			sect(m, "ipam")["gateway"] = "10.57.0.1"
		})
		netns := newNS(t)
		r1, r2 := rt("multi", netns.Path(), "net1"), rt("multi", netns.Path(), "net2")
		if _, err := e.cni.AddNetworkList(bg(), first, r1); err != nil {
			t.Fatal(err)
		}
		if _, err := e.cni.AddNetworkList(bg(), second, r2); err != nil {
			t.Fatal(err)
		}
		m := e.meta("multi")
		want := map[string]string{"net1": "memif-network", "net2": "second-network"}
		if !slices.Equal(m.Interfaces, []string{"net1", "net2"}) || js(m.Networks) != js(want) {
			t.Errorf("meta %s, want networks %s", js(m), js(want))
		}
		if err := e.cni.DelNetworkList(bg(), first, r1); err != nil {
			t.Fatal(err)
		}
		if m := e.meta("multi"); !slices.Equal(m.Interfaces, []string{"net2"}) || js(m.Networks) != js(map[string]string{"net2": "second-network"}) {
			t.Errorf("meta after DEL of net1: %s", js(m))
		}
		if err := e.cni.DelNetworkList(bg(), second, r2); err != nil {
			t.Fatal(err)
		}
		e.assertNothingLeft(c, "memif-network")
		if got := e.ipamFiles("second-network"); len(got) != 0 {
			t.Errorf("IPAM of second-network: %v", got)
		}
	})
}

// Defect 9: the host side of the result is named as VPP names the
// interface (an interface name, at most 15 bytes), with the socket path in
// the CNI 1.1 socketPath field; a 1.0.0 result has no socketPath. What
// upstream's consumers read (interfaces[].name = CNI_IFNAME with the
// sandbox, ips, routes) is unchanged.
func TestResultHostInterface(t *testing.T) {
	dataplanes(t, func(t *testing.T, e *env) {
		c := e.vppClient()
		for _, v := range []string{"1.1.0", "1.0.0"} {
			list := e.netconf(strings.Replace(readmeMemif, `"cniVersion":"0.3.1"`, `"cniVersion":"`+v+`"`, 1), nil)
			netns := newNS(t)
			r := rt("result"+strings.ReplaceAll(v, ".", ""), netns.Path(), "net1")
			res, err := e.cni.AddNetworkList(bg(), list, r)
			if err != nil {
				t.Fatal(err)
			}
			var raw struct {
				Interfaces []map[string]any `json:"interfaces"`
			}
			b, _ := json.Marshal(res)
			_ = json.Unmarshal(b, &raw)
			hi := e.hostIntent(r.ContainerID, "net1")
			st := e.vppState(c)
			if len(st.Memifs) != 1 {
				t.Fatalf("memifs %s", js(st.Memifs))
			}
			host, ctr := raw.Interfaces[0], raw.Interfaces[1]
			name, _ := host["name"].(string)
			if name != st.Memifs[0].Name || len(name) > 15 || host["sandbox"] != nil {
				t.Errorf("%s: host-side interface %v, VPP calls it %s", v, host, st.Memifs[0].Name)
			}
			if sp, ok := host["socketPath"]; (v == "1.1.0") != ok || (ok && sp != hi.Memif.SocketPath) {
				t.Errorf("%s: host-side socketPath %v, intent %s", v, sp, hi.Memif.SocketPath)
			}
			if ctr["name"] != "net1" || ctr["sandbox"] != netns.Path() {
				t.Errorf("%s: container-side interface %v", v, ctr)
			}
			if err := e.cni.DelNetworkList(bg(), list, r); err != nil {
				t.Fatal(err)
			}
		}
		e.assertNothingLeft(c, "memif-network")
	})
}

// Defect 6 and "a failed ADD leaves nothing in VPP": the master memif
// cannot be created (its socket path is taken by a directory, which VPP
// refuses as "File ... already exists"). The ADD fails and leaves no
// interface, no socket filename and no bridge domain in VPP, nothing in
// etcd and no IPAM reservation; the next ADD of another sandbox works.
func TestFailedAddLeavesNothingInVPP(t *testing.T) {
	dataplanes(t, func(t *testing.T, e *env) {
		c := e.vppClient()
		list := e.netconf(readmeMemif, func(m map[string]any) { sect(m, "uspace")["addTimeout"] = "5s"; fileSockets(m) })
		for i := 0; i < 2; i++ {
			id := "failed" + js(i)
			sock := filepath.Join(e.host.SharedDir, cni.SocketFileName(schema.IfTypeMemif, id, "net1"))
			if err := os.MkdirAll(sock, 0o755); err != nil {
				t.Fatal(err)
			}
			netns := newNS(t)
			if _, err := e.cni.AddNetworkList(bg(), list, rt(id, netns.Path(), "net1")); err == nil {
				t.Fatalf("ADD with its socket path taken succeeded")
			}
			// The ADD's roll-back deleted the intents; the agent undoes
			// what it made when it sees that.
			eventually(t, 10*time.Second, "the agent to undo the failed ADD", func() bool {
				return e.vppState(c).leftovers() == "" && len(e.hostKeys()) == 0
			})
			e.assertNothingLeft(c, "memif-network")
			os.Remove(sock)
		}
		if e.host.VPP != nil {
			// vppsim only (real VPP cannot be made to fail this call):
			// joining the bridge domain fails, after the agent created the
			// domain for this memif alone; the domain goes too.
			if err := e.host.VPP.FailNext("sw_interface_set_l2_bridge", 1000, -1); err != nil {
				t.Fatal(err)
			}
			if _, err := e.cni.AddNetworkList(bg(), list, rt("failedbd", newNS(t).Path(), "net1")); err == nil {
				t.Fatal("ADD succeeded although joining the bridge failed")
			}
			e.host.VPP.ClearFaults()
			eventually(t, 10*time.Second, "the agent to undo the ADD whose bridge join failed", func() bool {
				return e.vppState(c).leftovers() == "" && len(e.hostKeys()) == 0
			})
			e.assertNothingLeft(c, "memif-network")
		}
		netns := newNS(t)
		r := rt("afterwards", netns.Path(), "net1")
		if _, err := e.cni.AddNetworkList(bg(), list, r); err != nil {
			t.Fatalf("ADD after the failures: %v", err)
		}
		if err := e.cni.DelNetworkList(bg(), list, r); err != nil {
			t.Fatal(err)
		}
		e.assertNothingLeft(c, "memif-network")
	})
}

// Defect 5: drift. Someone deletes the host memif in VPP, or sets it
// down, behind the agent's back (vppctl, another API client). The agent
// hears it from VPP's interface events and repairs it; the status, and so
// CHECK, says what the agent saw: CHECK fails while the drift is
// unrepaired and passes again once it is.
func TestDriftRepairedAndSeenByCheck(t *testing.T) {
	dataplanes(t, func(t *testing.T, e *env) {
		c := e.vppClient()
		// Socket files, so that the repair can be made to fail (below).
		list := e.netconf(conf11(readmeMemif), fileSockets)
		netns := newNS(t)
		r := rt("drift", netns.Path(), "net1")
		if _, err := e.cni.AddNetworkList(bg(), list, r); err != nil {
			t.Fatal(err)
		}
		if err := e.cni.CheckNetworkList(bg(), list, r); err != nil {
			t.Fatalf("CHECK after ADD: %v", err)
		}
		memif := func() (vpp.Memif, bool) {
			st := e.vppState(c)
			if len(st.Memifs) != 1 {
				return vpp.Memif{}, false
			}
			return st.Memifs[0], true
		}
		repaired := func(what string, old vpp.Memif) {
			t.Helper()
			eventually(t, 10*time.Second, "the agent to repair "+what, func() bool {
				m, ok := memif()
				bd := findVPPBD(e.vppState(c).BDs, 4)
				return ok && m.AdminUp && m.Tag == old.Tag && bd != nil && len(bd.Members) == 1 && bd.Members[0].SwIfIndex == m.SwIfIndex
			})
			eventually(t, 10*time.Second, "CHECK to pass after "+what, func() bool {
				return e.cni.CheckNetworkList(bg(), list, r) == nil
			})
		}

		// Set down behind the agent's back.
		m, _ := memif()
		if err := c.SetAdminUp(bg(), m.SwIfIndex, false); err != nil {
			t.Fatal(err)
		}
		repaired("an interface set down", m)

		// Deleted behind the agent's back.
		m, _ = memif()
		if err := c.DeleteMemif(bg(), m.SwIfIndex); err != nil {
			t.Fatal(err)
		}
		repaired("a deleted interface", m)
		// The status writer is asynchronous: CHECK can pass on the ready
		// status from before the drift while "repairing" is still queued.
		eventually(t, 10*time.Second, "a ready status after the repair", func() bool {
			st := e.status("drift", "net1")
			return st.Ready && st.Error == ""
		})

		// Deleted while the repair cannot succeed (the socket directory is
		// a file now): CHECK names the drift until the repair works.
		m, _ = memif()
		if err := os.RemoveAll(e.host.SharedDir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(e.host.SharedDir, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteMemif(bg(), m.SwIfIndex); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "CHECK to report the drift", func() bool {
			err := e.cni.CheckNetworkList(bg(), list, r)
			return err != nil && strings.Contains(err.Error(), "outside uspace")
		})
		if st := e.status("drift", "net1"); st.Ready || !strings.Contains(st.Error, m.Name) {
			t.Errorf("status while unrepaired %s", js(st))
		}
		if err := os.Remove(e.host.SharedDir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(e.host.SharedDir, 0o755); err != nil {
			t.Fatal(err)
		}
		repaired("a deleted interface, once possible", m)

		if err := e.cni.DelNetworkList(bg(), list, r); err != nil {
			t.Fatal(err)
		}
		e.assertNothingLeft(c, "memif-network")
	})
}

func findVPPBD(bds []vpp.BridgeDomain, id uint32) *vpp.BridgeDomain {
	for i := range bds {
		if bds[i].ID == id {
			return &bds[i]
		}
	}
	return nil
}

func (e *env) hostIntent(id, ifname string) *schema.HostInterface {
	e.t.Helper()
	kv, err := e.etcd.Store.Get(bg(), schema.InterfaceKey(e.hostName, id, ifname))
	if err != nil || kv == nil {
		e.t.Fatalf("host intent of %s/%s: %v %v", id, ifname, kv, err)
	}
	hi, err := schema.DecodeAs[schema.HostInterface](kv.Value)
	if err != nil {
		e.t.Fatal(err)
	}
	return hi
}

func (e *env) containerIntent(id, ifname string) *schema.ContainerInterface {
	e.t.Helper()
	kv, err := e.etcd.Store.Get(bg(), schema.ContainerInterfaceKey(e.hostName, id, ifname))
	if err != nil || kv == nil {
		e.t.Fatalf("container intent of %s/%s: %v %v", id, ifname, kv, err)
	}
	ci, err := schema.DecodeAs[schema.ContainerInterface](kv.Value)
	if err != nil {
		e.t.Fatal(err)
	}
	return ci
}

func (e *env) status(id, ifname string) *schema.InterfaceStatus {
	e.t.Helper()
	key := schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: e.hostName, Container: id, Interface: ifname})
	kv, err := e.etcd.Store.Get(bg(), key)
	if err != nil || kv == nil {
		e.t.Fatalf("status %s: %v %v", key, kv, err)
	}
	st, err := schema.DecodeAs[schema.InterfaceStatus](kv.Value)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}
