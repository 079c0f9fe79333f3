package realdp_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/agent/endpoint"
	"github.com/uspace-io/uspace/deviceinfo"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/schema"
)

// memifNet11 is memifNet in CNI 1.1, whose result interfaces carry
// socketPath.
var memifNet11 = strings.Replace(memifNet, `"cniVersion":"1.0.0"`, `"cniVersion":"1.1.0"`, 1)

// TestMemifInContainerNetns: two containers whose memif sockets are
// abstract sockets in their own network namespaces (the default) ping each
// other through the host VPP, with no directory shared between host and
// containers: each container agent's --shared-dir is an empty directory of
// its own, and nothing appears in the host's shared directory. The
// container agents run in their containers' netns with neither etcd
// address nor credential nor container ID: they reach etcd through the
// host agent's endpoint there. The CNI result and the container agent's
// device-info files name the socket; a host VPP crash and a host agent
// restart re-open or adopt the sockets, and the restarted host agent
// re-opens the endpoints (an intent written while it was down reaches the
// container); a restarted container agent finds its endpoint; DEL leaves
// nothing, device-info files and endpoints included.
func TestMemifInContainerNetns(t *testing.T) {
	w := newWorld(t, harness.HostOptions{RealVPP: true})
	conf := w.netconf(memifNet11)
	a, b := newContainer(t), newContainer(t)
	infoDir := map[*container]string{}
	for _, c := range []*container{a, b} {
		res := w.add(conf, c, "net1")
		want := "@uspace-"
		if len(res.Interfaces) != 2 || !strings.HasPrefix(res.Interfaces[1].SocketPath, want) || res.Interfaces[1].Sandbox != c.netns {
			t.Fatalf("CNI result interfaces %+v: want the container's with socketPath %s... in %s", res.Interfaces, want, c.netns)
		}
		infoDir[c] = t.TempDir()
		c.ctr = w.etcd.StartContainerOn(t, w.host.Name, t.TempDir(),
			harness.ContainerOptions{RealVPP: true, Netns: c.netns, EndpointNetns: c.netns},
			[]string{"--device-info-dir", infoDir[c]})
	}
	for _, c := range []*container{a, b} {
		w.waitCtrReady(c, "net1")
		noEtcdConfig(t, w, c.ctr.Agent)
		if !endpointListening(t, c) {
			t.Errorf("no endpoint %s listening in %s", endpoint.Name, c.netns)
		}
	}
	t.Logf("a -> b: %s", ping(t, a.ctr.RealVPP, b.ip))
	t.Logf("b -> a: %s", ping(t, b.ctr.RealVPP, a.ip))

	hostMemif := w.host.RealVPP.CLI(t, "show memif")
	for _, c := range []*container{a, b} {
		sock := socketOf(t, w, c)
		name, ok := schema.AbstractSocketName(sock)
		if !ok {
			t.Fatalf("host status socket %q: want an abstract socket", sock)
		}
		if !strings.Contains(hostMemif, "abstract:"+name+",netns_name="+c.netns) {
			t.Errorf("host VPP has no socket abstract:%s in %s:\n%s", name, c.netns, hostMemif)
		}
		if ss := realdp.Run(t, "ip", "netns", "exec", filepath.Base(c.netns), "ss", "-xl"); !strings.Contains(ss, "@"+name) {
			t.Errorf("no abstract socket @%s listening in %s:\n%s", name, c.netns, ss)
		}
		var info deviceinfo.Info
		b, err := os.ReadFile(filepath.Join(infoDir[c], "net1.json"))
		if err == nil {
			err = json.Unmarshal(b, &info)
		}
		if err != nil || info.Type != "memif" || info.Version != "1.1.0" || info.Memif == nil ||
			*info.Memif != (deviceinfo.Memif{Role: "slave", Mode: "ethernet", Path: sock}) {
			t.Errorf("device-info of %s: %s (%v), want memif slave ethernet on %s", c.id, b, err, sock)
		}
	}
	if ents, err := os.ReadDir(w.host.SharedDir); err == nil && len(ents) > 0 {
		t.Errorf("host shared dir %s holds %d entries, want none", w.host.SharedDir, len(ents))
	}

	t.Run("host VPP kill -9 re-opens the sockets in the containers' netns", func(t *testing.T) {
		v := w.host.RealVPP
		v.Kill(t)
		v.Start(t)
		eventually(t, 30*time.Second, "host VPP re-populated", func() (bool, string) {
			names := ifNames(t, v)
			return len(names) == 3, strings.Join(names, " ")
		})
		t.Logf("a -> b after the restart: %s", ping(t, a.ctr.RealVPP, b.ip))
	})
	t.Run("host agent restart adopts the abstract sockets with zero writes and re-opens the endpoints", func(t *testing.T) {
		proxy := realdpProxy(t, w)
		if endpointListening(t, a) {
			t.Errorf("endpoint in %s still listens while the host agent is down", a.netns)
		}
		// Written while no endpoint serves: the container agent must get
		// it from the restarted host agent's endpoint.
		rev := addRoute(t, w, a, "10.98.0.0/16")
		w.host.RestartAgent(t)
		waitAdopted(t, w, a, b)
		harness.WaitStatus[schema.InterfaceStatus](t, w.etcd, ctrStatusKey(a, "net1"), rev, harness.Ready[schema.InterfaceStatus])
		if fib := a.ctr.RealVPP.CLI(t, "show ip fib 10.98.0.0/16"); !strings.Contains(fib, "10.56.217.1") {
			t.Errorf("route written while the host agent was down is not in container %s's VPP:\n%s", a.id, fib)
		}
		if writes := proxy.Writes(); len(writes) != 0 {
			t.Errorf("restarted host agent sent write messages to VPP: %v (all: %v)", writes, proxy.Counts())
		}
		for _, c := range []*container{a, b} {
			if !c.ctr.Agent.Running() {
				t.Errorf("container agent of %s exited over the host agent restart:\n%s", c.id, c.ctr.Agent.Output())
			}
		}
		ping(t, a.ctr.RealVPP, b.ip)
	})
	t.Run("container agent restart finds its endpoint", func(t *testing.T) {
		if err := b.ctr.Agent.Stop(10 * time.Second); err != nil {
			t.Fatalf("container agent stop: %v", err)
		}
		rev := addRoute(t, w, b, "10.97.0.0/16")
		if err := b.ctr.Agent.Start(); err != nil {
			t.Fatal(err)
		}
		harness.WaitStatus[schema.InterfaceStatus](t, w.etcd, ctrStatusKey(b, "net1"), rev, harness.Ready[schema.InterfaceStatus])
		noEtcdConfig(t, w, b.ctr.Agent)
		if fib := b.ctr.RealVPP.CLI(t, "show ip fib 10.97.0.0/16"); !strings.Contains(fib, "10.56.217.1") {
			t.Errorf("route written while its agent was down is not in container %s's VPP:\n%s", b.id, fib)
		}
		ping(t, b.ctr.RealVPP, a.ip)
	})

	w.delClean(memifNet11, a, b, nil)
	for _, c := range []*container{a, b} {
		eventually(t, 10*time.Second, "device-info file of "+c.id+" removed", func() (bool, string) {
			ents, _ := os.ReadDir(infoDir[c])
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			return len(names) == 0, strings.Join(names, " ")
		})
		eventually(t, 10*time.Second, "endpoint in "+c.netns+" closed", func() (bool, string) {
			return !endpointListening(t, c), "still listening"
		})
	}
}

// endpointListening: the host agent's endpoint listens in c's netns.
func endpointListening(t *testing.T, c *container) bool {
	t.Helper()
	ss := realdp.Run(t, "ip", "netns", "exec", filepath.Base(c.netns), "ss", "-xlH")
	return slices.ContainsFunc(strings.Fields(ss), func(f string) bool { return f == endpoint.Name })
}

// noEtcdConfig fails t unless the running process p was given no etcd
// address and no credential, on its command line or in its environment.
func noEtcdConfig(t *testing.T, w *world, p *harness.Proc) {
	t.Helper()
	pid := strconv.Itoa(p.Pid())
	var args []string
	// nsenter enters the netns, then execs the agent in the same process.
	eventually(t, 10*time.Second, "pid "+pid+" runs the container agent", func() (bool, string) {
		cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		args = strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		return strings.HasSuffix(args[0], "uspace-agent") && slices.Contains(args, "container"), strings.Join(args, " ")
	})
	environ, err := os.ReadFile("/proc/" + pid + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	for _, arg := range args {
		if strings.HasPrefix(arg, "--etcd") || slices.ContainsFunc(w.etcd.Endpoints, func(e string) bool { return strings.Contains(arg, e) }) {
			t.Errorf("container agent (pid %s) argument %q names etcd", pid, arg)
		}
	}
	for _, kv := range strings.Split(string(environ), "\x00") {
		name, val, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(name, "USPACE_ETCD") || strings.HasPrefix(name, "ETCDCTL")) && val != "" {
			t.Errorf("container agent (pid %s) environment carries %s", pid, kv)
		}
	}
}

// addRoute adds dst via the network's gateway to c's net1 intent and
// returns the write's revision.
func addRoute(t *testing.T, w *world, c *container, dst string) int64 {
	t.Helper()
	key := schema.ContainerInterfaceKey(c.host, c.id, "net1")
	kv, err := w.etcd.Store.Get(context.Background(), key)
	if err != nil || kv == nil {
		t.Fatalf("get %s: %v", key, err)
	}
	ci, err := schema.DecodeAs[schema.ContainerInterface](kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	ci.Routes = append(ci.Routes, schema.Route{Dst: dst, GW: "10.56.217.1"})
	return w.etcd.Put(t, map[string]schema.Object{key: ci})
}

// memifFilePing: the opt-out, uspace.memifSocket "file": socket files in
// the shared directory, as upstream; two containers ping, DEL clean.
func memifFilePing(w *world) {
	t := w.t
	conf := strings.Replace(memifNet, `"name":"memif-network"`, `"name":"memif-network","uspace":{"memifSocket":"file"}`, 1)
	a, b := w.pair(conf)
	socks := []string{socketOf(t, w, a), socketOf(t, w, b)}
	for _, s := range socks {
		if !strings.HasPrefix(s, w.host.SharedDir+"/") {
			t.Errorf("socket %s: want a file in %s", s, w.host.SharedDir)
		}
	}
	ping(t, a.ctr.RealVPP, b.ip)
	w.delClean(conf, a, b, nil)
	if ids := memifSocketIDs(t, w.host.RealVPP); !slices.Equal(ids, []string{"0"}) {
		t.Errorf("memif socket ids after DEL: %v", ids)
	}
}
