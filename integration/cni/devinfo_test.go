package cni_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/uspace-io/uspace/deviceinfo"
	"github.com/uspace-io/uspace/integration/vppsim"
)

// The runtime passes the CNIDeviceInfoFile capability (Multus does for
// device-plugin resources): ADD writes the NPWG device-info of the
// container's end there and its CNI 1.1 result names the socket on both
// interfaces; DEL removes the file, a second DEL too. A memif's socket is
// an abstract socket in the container's netns (vppsim listens there, as
// VPP does), unless the network opts out with uspace.memifSocket "file";
// vhost-user's is always a file in sharedDir.
func TestDeviceInfoAndSocketPath(t *testing.T) {
	e := newEnv(t, true)
	v11 := func(conf string) string {
		return strings.Replace(strings.Replace(conf, `"cniVersion":"0.3.1"`, `"cniVersion":"1.1.0"`, 1), `"cniVersion":"1.0.0"`, `"cniVersion":"1.1.0"`, 1)
	}
	for _, tc := range []struct {
		name, conf, memifSocket string
		want                    func(netns string, ctrSock string) (deviceinfo.Info, bool)
	}{
		{"memif abstract", v11(readmeMemif), "", func(_ string, sock string) (deviceinfo.Info, bool) {
			return deviceinfo.Info{Type: "memif", Version: "1.1.0", Memif: &deviceinfo.Memif{Role: "slave", Mode: "ethernet", Path: sock}},
				strings.HasPrefix(sock, "@uspace-")
		}},
		{"memif file", v11(readmeMemif), "file", func(_ string, sock string) (deviceinfo.Info, bool) {
			return deviceinfo.Info{Type: "memif", Version: "1.1.0", Memif: &deviceinfo.Memif{Role: "slave", Mode: "ethernet", Path: sock}},
				strings.HasPrefix(sock, e.sharedDir()+"/")
		}},
		{"vhost-user", v11(vhostVPP), "", func(_ string, sock string) (deviceinfo.Info, bool) {
			return deviceinfo.Info{Type: "vhost-user", Version: "1.1.0", VhostUser: &deviceinfo.VhostUser{Mode: "server", Path: sock}},
				strings.HasPrefix(sock, e.sharedDir()+"/")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := e.netconf(tc.conf, func(m map[string]any) {
				m["capabilities"] = map[string]any{"CNIDeviceInfoFile": true}
				if tc.memifSocket != "" {
					m["uspace"].(map[string]any)["memifSocket"] = tc.memifSocket
				}
			})
			netns := newNS(t)
			infoFile := filepath.Join(t.TempDir(), "devinfo", "net1.json")
			r := rt("devinfo-"+strings.ReplaceAll(tc.name, " ", "-"), netns.Path(), "net1")
			r.CapabilityArgs = map[string]any{"CNIDeviceInfoFile": infoFile}
			res, err := e.cni.AddNetworkList(bg(), list, r)
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			cur, err := types100.NewResultFromResult(res)
			if err != nil {
				t.Fatal(err)
			}
			if len(cur.Interfaces) != 2 {
				t.Fatalf("interfaces: %s", js(cur.Interfaces))
			}
			sock := cur.Interfaces[1].SocketPath
			want, ok := tc.want(netns.Path(), sock)
			if !ok || cur.Interfaces[0].SocketPath != sock {
				t.Errorf("result socketPaths host %q container %q", cur.Interfaces[0].SocketPath, sock)
			}
			var got deviceinfo.Info
			b, err := os.ReadFile(infoFile)
			if err == nil {
				err = json.Unmarshal(b, &got)
			}
			if err != nil || js(got) != js(want) {
				t.Errorf("device-info file: %s (%v), want %s", b, err, js(want))
			}
			if tc.name == "memif abstract" {
				checkAbstractListener(t, e.host.VPP.Snapshot().MemifSockets, strings.TrimPrefix(sock, "@"), netns.Path())
			}
			for i := range 2 {
				if err := e.cni.DelNetworkList(bg(), list, r); err != nil {
					t.Fatalf("DEL #%d: %v", i+1, err)
				}
				if _, err := os.Stat(infoFile); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("device-info file after DEL #%d: %v", i+1, err)
				}
			}
		})
	}
}

// checkAbstractListener: the host VPP (vppsim) registered the abstract
// socket name in netns and listens on it.
func checkAbstractListener(t *testing.T, socks []vppsim.MemifSocket, name, netns string) {
	t.Helper()
	for _, s := range socks {
		if s.Filename == "abstract:"+name+",netns_name="+netns {
			if !s.Listening {
				t.Errorf("socket %s registered but not listening", s.Filename)
			}
			return
		}
	}
	t.Errorf("no socket abstract:%s in %s in vppsim: %s", name, netns, js(socks))
}

// A bad uspace.memifSocket fails ADD naming the field, and writes nothing.
func TestMemifSocketValidation(t *testing.T) {
	e := newEnv(t, true)
	list := e.netconf(readmeMemif, func(m map[string]any) { m["uspace"].(map[string]any)["memifSocket"] = "shared" })
	netns := newNS(t)
	_, err := e.cni.AddNetworkList(bg(), list, rt("bad-memif-socket", netns.Path(), "net1"))
	if err == nil || !strings.Contains(err.Error(), `uspace.memifSocket "shared"`) {
		t.Fatalf("ADD with memifSocket \"shared\": %v", err)
	}
	if left := e.hostKeys(); len(left) != 0 {
		t.Errorf("written to etcd by a refused ADD: %v", left)
	}
}
