package realdp_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
// its own, and nothing appears in the host's shared directory. The CNI
// result and the container agent's device-info files name the socket; a
// host VPP crash and a host agent restart re-open or adopt the sockets;
// DEL leaves nothing, device-info files included.
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
		c.ctr = w.etcd.StartContainerOn(t, w.host.Name, t.TempDir(), harness.ContainerOptions{RealVPP: true, Netns: c.netns},
			[]string{"--container-id", c.id, "--device-info-dir", infoDir[c]})
	}
	for _, c := range []*container{a, b} {
		w.waitCtrReady(c, "net1")
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
	t.Run("host agent restart adopts the abstract sockets with zero writes", func(t *testing.T) {
		proxy := realdpProxy(t, w)
		w.host.RestartAgent(t)
		waitAdopted(t, w, a, b)
		if writes := proxy.Writes(); len(writes) != 0 {
			t.Errorf("restarted host agent sent write messages to VPP: %v (all: %v)", writes, proxy.Counts())
		}
		ping(t, a.ctr.RealVPP, b.ip)
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
	}
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
