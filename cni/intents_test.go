package cni

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/uspace-io/uspace/schema"
)

func testIPAM(t *testing.T) *types100.Result {
	t.Helper()
	_, ipn, _ := net.ParseCIDR("10.56.217.131/24")
	ipn.IP = net.ParseIP("10.56.217.131").To4()
	_, def, _ := net.ParseCIDR("0.0.0.0/0")
	_, other, _ := net.ParseCIDR("192.168.0.0/16")
	return &types100.Result{
		CNIVersion: "1.0.0",
		IPs:        []*types100.IPConfig{{Address: *ipn, Gateway: net.ParseIP("10.56.217.1")}},
		Routes:     []*types.Route{{Dst: *def}, {Dst: *other, GW: net.ParseIP("10.56.217.254")}},
		DNS:        types.DNS{Nameservers: []string{"10.56.217.2"}},
	}
}

var testAtt = Attachment{
	Host:        "node-1",
	ContainerID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	IfName:      "net1",
	Netns:       "/var/run/netns/pod1",
	Pod:         PodArgs{Namespace: "default", Name: "pod-1", UID: "uid-1"},
}

// readmeMemifFile is the README's memif network with the opt-out of
// abstract sockets: socket files in sharedDir, as upstream.
var readmeMemifFile = strings.Replace(readmeMemif, `"type":"userspace"`, `"type":"userspace","uspace":{"memifSocket":"file"}`, 1)

// By default a memif's socket is an abstract socket in the container's
// netns: the host intent names the netns, the container's does not (its
// VPP runs there), and no shared directory is involved.
func TestBuildIntentsMemifAbstract(t *testing.T) {
	in, err := BuildIntents(mustParse(t, readmeMemif), testAtt, testIPAM(t), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sock := "@" + AbstractSocketName(testAtt.ContainerID, testAtt.IfName)
	if *in.Host.Memif != (schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet, SocketPath: sock, Netns: testAtt.Netns}) {
		t.Errorf("host memif: %+v, want abstract socket %s in %s", *in.Host.Memif, sock, testAtt.Netns)
	}
	if *in.Container.Memif != (schema.MemifSpec{Role: schema.MemifSlave, Mode: schema.MemifEthernet, SocketPath: sock}) {
		t.Errorf("container memif: %+v, want abstract socket %s without netns", *in.Container.Memif, sock)
	}
	other := testAtt
	other.IfName = "net2"
	if AbstractSocketName(other.ContainerID, other.IfName) == AbstractSocketName(testAtt.ContainerID, testAtt.IfName) {
		t.Error("two interfaces of one container share an abstract socket name")
	}
	// A netns path that makes VPP's socket filename too long is refused
	// naming the opt-out.
	long := testAtt
	long.Netns = "/var/run/netns/" + strings.Repeat("n", 80)
	_, err = BuildIntents(mustParse(t, readmeMemif), long, nil, time.Now())
	if e := cniErr(t, err); e.Code != types.ErrInvalidNetworkConfig || !strings.Contains(e.Msg, `uspace.memifSocket "file"`) {
		t.Errorf("long netns: %v", err)
	}
	// A configured socketfile names the abstract socket.
	c := mustParse(t, strings.Replace(readmeMemif, `"role":"master","mode":"ethernet"`, `"role":"master","mode":"ethernet","socketfile":"my.sock"`, 1))
	if in, err := BuildIntents(c, testAtt, nil, time.Now()); err != nil || in.Host.Memif.SocketPath != "@my.sock" {
		t.Errorf("socketfile: %v %+v", err, in)
	}
}

func TestBuildIntentsMemifBridge(t *testing.T) {
	c := mustParse(t, readmeMemifFile)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in, err := BuildIntents(c, testAtt, testIPAM(t), now)
	if err != nil {
		t.Fatal(err)
	}
	wantSock := "/var/run/vpp/cni/shared/memif-0123456789ab-" + idTag(testAtt.ContainerID)[13:] + "-net1.sock"
	h := in.Host
	if h.Host != "node-1" || h.Container != testAtt.ContainerID || h.Name != "net1" || h.Type != schema.IfTypeMemif ||
		h.NetType != schema.NetTypeBridge || h.Bridge != 4 || h.Network != "memif-network" || h.Vhost != nil {
		t.Errorf("host intent: %+v", h)
	}
	if *h.Memif != (schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet, SocketPath: wantSock}) {
		t.Errorf("host memif: %+v, want socket %s", *h.Memif, wantSock)
	}
	ct := in.Container
	if *ct.Memif != (schema.MemifSpec{Role: schema.MemifSlave, Mode: schema.MemifEthernet, SocketPath: wantSock}) {
		t.Errorf("container memif: %+v", *ct.Memif)
	}
	if len(ct.IPs) != 1 || ct.IPs[0] != (schema.IPAddress{Address: "10.56.217.131/24", Gateway: "10.56.217.1"}) {
		t.Errorf("container IPs: %+v", ct.IPs)
	}
	// A route without a gateway gets the address's gateway; one with a
	// gateway keeps it.
	if len(ct.Routes) != 2 || ct.Routes[0] != (schema.Route{Dst: "0.0.0.0/0", GW: "10.56.217.1"}) ||
		ct.Routes[1] != (schema.Route{Dst: "192.168.0.0/16", GW: "10.56.217.254"}) {
		t.Errorf("container routes: %+v", ct.Routes)
	}
	if ct.MAC == "" || ct.MAC == h.MAC {
		t.Errorf("MACs host %q container %q", h.MAC, ct.MAC)
	}
	m := in.Meta
	if m.Netns != testAtt.Netns || m.PodNamespace != "default" || m.PodName != "pod-1" || m.PodUID != "uid-1" ||
		m.Network != "memif-network" || len(m.Interfaces) != 1 || m.Interfaces[0] != "net1" || !m.CreatedAt.Equal(now) {
		t.Errorf("meta: %+v", m)
	}
	// Same inputs, same intents (repeated ADD is recognised as identical).
	again, _ := BuildIntents(c, testAtt, testIPAM(t), now.Add(time.Hour))
	for _, pair := range [][2]schema.Object{{in.Host, again.Host}, {in.Container, again.Container}} {
		a, _ := schema.Encode(pair[0])
		b, _ := schema.Encode(pair[1])
		if !bytes.Equal(a, b) {
			t.Errorf("not deterministic:\n%s\n%s", a, b)
		}
	}
}

// uspace.vni reaches the host intent: the network spans hosts.
func TestBuildIntentsVNI(t *testing.T) {
	c := mustParse(t, strings.Replace(readmeMemif, `"type":"userspace"`, `"type":"userspace","uspace":{"vni":4242}`, 1))
	in, err := BuildIntents(c, testAtt, testIPAM(t), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if in.Host.VNI != 4242 || in.Host.Bridge != 4 || in.Host.Network != "memif-network" {
		t.Errorf("host intent: vni %d bridge %d network %q", in.Host.VNI, in.Host.Bridge, in.Host.Network)
	}
	if _, err := schema.Encode(in.Host); err != nil {
		t.Errorf("host intent with a VNI does not validate: %v", err)
	}
}

func TestBuildIntentsVhostAndInterface(t *testing.T) {
	conf := strings.Replace(vhostVPP, `"netType":"bridge"`, `"netType":"interface"`, 1)
	c := mustParse(t, conf)
	in, err := BuildIntents(c, testAtt, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantSock := filepath.Join(DefaultSharedDir, "0123456789ab-"+idTag(testAtt.ContainerID)[13:]+"-net1")
	if in.Host.NetType != schema.NetTypeInterface || in.Host.Bridge != 0 || in.Host.Memif != nil ||
		*in.Host.Vhost != (schema.VhostSpec{Mode: schema.VhostClient, SocketPath: wantSock}) {
		t.Errorf("host: %+v %+v", in.Host, in.Host.Vhost)
	}
	if *in.Container.Vhost != (schema.VhostSpec{Mode: schema.VhostServer, SocketPath: wantSock}) {
		t.Errorf("container: %+v", in.Container.Vhost)
	}
	if in.Container.IPs != nil || in.Container.Routes != nil {
		t.Errorf("no IPAM, but IPs %v routes %v", in.Container.IPs, in.Container.Routes)
	}
	// Seed default: no netType is an unattached interface.
	c = mustParse(t, strings.Replace(readmeMemif, `"netType":"bridge",`, ``, 1))
	if in, err = BuildIntents(c, testAtt, nil, time.Now()); err != nil || in.Host.NetType != schema.NetTypeInterface || in.Host.Bridge != 0 {
		t.Errorf("no netType: %v %+v", err, in)
	}
}

// cnitoolID is how cnitool names a container: "cnitool-" +
// hex(sha512(netns path)[:10]).
func cnitoolID(netns string) string {
	sum := sha512.Sum512([]byte(netns))
	return fmt.Sprintf("cnitool-%x", sum[:10])
}

func TestSocketNamesUniqueForCnitoolIDs(t *testing.T) {
	// Find two cnitool IDs that share their first 12 characters, as
	// upstream's memif-<cid12>-<ifname>.sock would collide on.
	seen := map[string]string{}
	var a, b string
	for i := 0; a == ""; i++ {
		id := cnitoolID(fmt.Sprintf("/var/run/netns/test-%d", i))
		if other, ok := seen[id[:12]]; ok {
			a, b = other, id
		}
		seen[id[:12]] = id
	}
	if a[:12] != b[:12] || a == b {
		t.Fatalf("test bug: %s %s", a, b)
	}
	for _, typ := range []schema.IfType{schema.IfTypeMemif, schema.IfTypeVhostUser} {
		na, nb := SocketFileName(typ, a, "eth0"), SocketFileName(typ, b, "eth0")
		if na == nb {
			t.Errorf("%s: %s and %s share socket name %s", typ, a, b, na)
		}
		if !strings.Contains(na, a[:12]) {
			t.Errorf("%s: name %s lost upstream's cid12 %s", typ, na, a[:12])
		}
	}
	// Every name is unique across many IDs and interface names.
	names := map[string]bool{}
	for i := 0; i < 2000; i++ {
		for _, ifn := range []string{"eth0", "net1"} {
			n := SocketFileName(schema.IfTypeMemif, cnitoolID(fmt.Sprintf("/run/netns/n%d", i)), ifn)
			if names[n] {
				t.Fatalf("duplicate socket name %s", n)
			}
			names[n] = true
		}
	}
}

func TestSocketPathLimits(t *testing.T) {
	c := mustParse(t, readmeMemifFile)
	// The longest default name fits with the default sharedDir: 64-char
	// ID, 15-char interface name.
	att := testAtt
	att.IfName = "abcdefghijklmno"
	p, _ := c.SocketPath(att.ContainerID, att.IfName)
	if len(p) > schema.MaxSocketPath {
		t.Fatalf("%s is %d bytes", p, len(p))
	}
	if _, err := BuildIntents(c, att, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	// A short container ID works (upstream panicked under 12 chars).
	att.ContainerID = "abc"
	if in, err := BuildIntents(c, att, nil, time.Now()); err != nil || !strings.Contains(in.Host.Memif.SocketPath, "/memif-abc-") {
		t.Errorf("short id: %v", err)
	}
	// A long sharedDir is blamed when the default name no longer fits.
	long := "/" + strings.Repeat("d", 70)
	c2 := mustParse(t, strings.Replace(readmeMemifFile, `"type":"userspace"`, `"type":"userspace","sharedDir":"`+long+`"`, 1))
	_, err := BuildIntents(c2, testAtt, nil, time.Now())
	if e := cniErr(t, err); e.Code != types.ErrInvalidNetworkConfig || !strings.Contains(e.Msg, "sharedDir") || !strings.Contains(e.Msg, "107") {
		t.Errorf("long sharedDir: %v", err)
	}
	// A configured socketfile is honoured and blamed when too long.
	c3 := mustParse(t, strings.Replace(readmeMemifFile, `"role":"master","mode":"ethernet"`, `"role":"master","mode":"ethernet","socketfile":"my.sock"`, 1))
	in, err := BuildIntents(c3, testAtt, nil, time.Now())
	if err != nil || in.Host.Memif.SocketPath != "/var/run/vpp/cni/shared/my.sock" || in.Container.Memif.SocketPath != in.Host.Memif.SocketPath {
		t.Errorf("socketfile: %v %+v", err, in)
	}
	c4 := mustParse(t, strings.Replace(readmeMemifFile, `"role":"master","mode":"ethernet"`, `"role":"master","mode":"ethernet","socketfile":"`+strings.Repeat("s", 90)+`"`, 1))
	_, err = BuildIntents(c4, testAtt, nil, time.Now())
	if e := cniErr(t, err); !strings.Contains(e.Msg, "host.memif.socketfile") {
		t.Errorf("long socketfile: %v", err)
	}
}

func TestMACs(t *testing.T) {
	c := mustParse(t, readmeMemif)
	att := testAtt
	att.Pod.MAC = "02:aa:bb:cc:dd:ee"
	in, err := BuildIntents(c, att, nil, time.Now())
	if err != nil || in.Container.MAC != "02:aa:bb:cc:dd:ee" {
		t.Errorf("CNI_ARGS MAC: %v %+v", err, in)
	}
	att.Pod.MAC = "nonsense"
	if _, err := BuildIntents(c, att, nil, time.Now()); err == nil || !strings.Contains(err.Error(), "CNI_ARGS MAC") {
		t.Errorf("bad MAC: %v", err)
	}
	c = mustParse(t, strings.Replace(readmeMemif, `"type":"userspace"`, `"type":"userspace","runtimeConfig":{"mac":"02:11:22:33:44:55"}`, 1))
	if in, err := BuildIntents(c, testAtt, nil, time.Now()); err != nil || in.Container.MAC != "02:11:22:33:44:55" {
		t.Errorf("runtimeConfig mac: %v", err)
	}
	hw, err := net.ParseMAC(DeterministicMAC("host", "x", "eth0"))
	if err != nil || hw[0]&2 == 0 || hw[0]&1 != 0 {
		t.Errorf("generated MAC %v is not locally administered unicast", hw)
	}
}

func TestBuildIntentsRejectsBadAttachment(t *testing.T) {
	c := mustParse(t, readmeMemif)
	for field, att := range map[string]Attachment{
		"uspace.host":     {Host: "bad/host", ContainerID: "c1", IfName: "eth0"},
		"CNI_CONTAINERID": {Host: "h", ContainerID: "-bad", IfName: "eth0"},
		"CNI_IFNAME":      {Host: "h", ContainerID: "c1", IfName: "way-too-long-ifname"},
	} {
		_, err := BuildIntents(c, att, nil, time.Now())
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	noName := mustParse(t, strings.Replace(readmeMemif, `"name":"memif-network",`, ``, 1))
	if _, err := BuildIntents(noName, testAtt, nil, time.Now()); err == nil || !strings.Contains(err.Error(), "name") {
		t.Errorf("no name: %v", err)
	}
}

func TestAllocMemifID(t *testing.T) {
	mk := func(cid string, role schema.MemifRole, sock string, id uint32) *schema.HostInterface {
		return &schema.HostInterface{Container: cid, Name: "eth0", Type: schema.IfTypeMemif,
			Memif: &schema.MemifSpec{Role: role, Mode: schema.MemifEthernet, SocketPath: sock, ID: id}}
	}
	shared := "/var/run/vpp/cni/shared/my.sock"
	others := map[string]*schema.HostInterface{
		"k1": mk("a", schema.MemifMaster, shared, 0),
		"k2": mk("b", schema.MemifMaster, shared, 2),
		"k3": mk("c", schema.MemifMaster, "/other.sock", 1),
	}
	want := mk("d", schema.MemifMaster, shared, 0)
	if id, err := AllocMemifID("self", want, others); err != nil || id != 1 {
		t.Errorf("id %d %v, want 1", id, err)
	}
	// Our own key is not counted: a retried ADD keeps a free slot.
	if id, err := AllocMemifID("k1", want, others); err != nil || id != 0 {
		t.Errorf("self id %d %v, want 0", id, err)
	}
	if id, err := AllocMemifID("self", mk("d", schema.MemifMaster, "/fresh.sock", 0), others); err != nil || id != 0 {
		t.Errorf("fresh socket %d %v", id, err)
	}
	_, err := AllocMemifID("self", mk("d", schema.MemifSlave, shared, 0), others)
	if e := cniErr(t, err); !strings.Contains(e.Msg, "host.memif.role") {
		t.Errorf("role clash: %v", err)
	}
	v := &schema.HostInterface{Container: "e", Name: "eth0", Type: schema.IfTypeVhostUser, Vhost: &schema.VhostSpec{Mode: schema.VhostServer, SocketPath: "/other.sock"}}
	_, err = AllocMemifID("self", v, others)
	if e := cniErr(t, err); !strings.Contains(e.Msg, "host.vhost.socketfile") {
		t.Errorf("vhost clash: %v", err)
	}
}

func TestResultVersions(t *testing.T) {
	c := mustParse(t, readmeMemif)
	in, err := BuildIntents(c, testAtt, testIPAM(t), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		dns := testIPAM(t).DNS
		r, err := BuildResult(v, in, testAtt.Netns, &dns, &schema.InterfaceStatus{InterfaceName: "memif3/0"})
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if r.Version() != v {
			t.Errorf("result version %s, want %s", r.Version(), v)
		}
		var buf bytes.Buffer
		if err := r.PrintTo(&buf); err != nil {
			t.Fatal(err)
		}
		var out struct {
			CNIVersion string `json:"cniVersion"`
			Interfaces []struct {
				Name, Mac, Sandbox string
				SocketPath         *string `json:"socketPath"`
			}
			IPs []struct {
				Version   string `json:"version"`
				Interface *int
				Address   string
			}
			DNS struct{ Nameservers []string }
		}
		if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		if out.CNIVersion != v || len(out.Interfaces) != 2 || out.Interfaces[1].Sandbox != testAtt.Netns || out.Interfaces[1].Name != "net1" ||
			out.Interfaces[0].Sandbox != "" || out.Interfaces[0].Name != "memif3/0" ||
			len(out.IPs) != 1 || out.IPs[0].Address != "10.56.217.131/24" || *out.IPs[0].Interface != 1 || len(out.DNS.Nameservers) != 1 {
			t.Errorf("%s: %s", v, buf.String())
		}
		// socketPath exists from CNI 1.1 on; older results must not carry it.
		if sp := out.Interfaces[0].SocketPath; (v == "1.1.0") != (sp != nil) || (sp != nil && *sp != in.Host.Memif.SocketPath) {
			t.Errorf("%s: host socketPath %v: %s", v, sp, buf.String())
		}
		if strings.HasPrefix(v, "0.") && out.IPs[0].Version != "4" {
			t.Errorf("%s: ip version %q: %s", v, out.IPs[0].Version, buf.String())
		}
	}
	// Without a name from the agent: a stable name that fits IFNAMSIZ.
	if n := HostIfName(in.Host, nil); len(n) > 15 || n != HostIfName(in.Host, &schema.InterfaceStatus{}) || strings.Contains(n, "/") ||
		n != HostIfName(in.Host, &schema.InterfaceStatus{InterfaceName: "VirtualEthernet0/0/0"}) {
		t.Errorf("fallback host name %q", n)
	}
	if _, err := BuildResult("0.2.0", in, testAtt.Netns, nil, nil); err != nil {
		// 0.2.0 has no interfaces; converting still works, the plugin does
		// not advertise it anyway.
		t.Logf("0.2.0: %v", err)
	}
}
