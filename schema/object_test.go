package schema

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func goodHostMemif() *HostInterface {
	return &HostInterface{
		Host: "node1", Container: "c1", Name: "net1",
		Type: IfTypeMemif, NetType: NetTypeBridge, Bridge: 4,
		Memif: &MemifSpec{Role: MemifMaster, Mode: MemifEthernet, SocketPath: "/var/run/vpp/cni/shared/memif-c1-net1.sock", ID: 0},
		MTU:   1500,
	}
}

func goodVolume() *Volume {
	return &Volume{Host: "node1", Name: "volume0", Type: VolumeBlk, Device: "vhostblk0",
		Root: "/var/run/kata-containers/vhost-user", Bdev: "Malloc0",
		Malloc: &MallocSpec{SizeBytes: 64 << 20, BlockSize: 4096}}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	objs := []Object{
		goodHostMemif(),
		&HostInterface{Host: "h", Container: "c", Name: "eth0", Type: IfTypeVhostUser, NetType: NetTypeInterface,
			Vhost: &VhostSpec{Mode: VhostServer, SocketPath: "/var/run/vpp/cni/shared/c-eth0"}},
		&ContainerInterface{Host: "h", Container: "c", Name: "net1", Type: IfTypeMemif,
			Memif: &MemifSpec{Role: MemifSlave, Mode: MemifIP, SocketPath: "/var/run/vpp/cni/shared/memif.sock"},
			IPs:   []IPAddress{{Address: "10.1.1.2/24", Gateway: "10.1.1.1"}}, Routes: []Route{{Dst: "0.0.0.0/0", GW: "10.1.1.1"}}},
		&ContainerMeta{Host: "h", Container: "c", Interfaces: []string{"net1"}},
		&ContainerMeta{Host: "h", Container: "c", Interfaces: []string{"net1", "net2"}, Networks: map[string]string{"net1": "a", "net2": "b"}},
		&Network{Name: "memif-network", Bridge: 4},
		goodVolume(),
		&Agent{Host: "h", Version: "dev"},
		&InterfaceStatus{ObservedRevision: 7, Ready: true, SwIfIndex: 3},
		&VolumeStatus{ObservedRevision: 9, Major: 241},
	}
	for _, o := range objs {
		b, err := Encode(o)
		if err != nil {
			t.Fatalf("Encode(%T): %v", o, err)
		}
		if !strings.Contains(string(b), `"apiVersion":"uspace/v1"`) || !strings.Contains(string(b), `"kind":"`+o.kind()+`"`) {
			t.Errorf("Encode(%T) = %s, lacks apiVersion/kind", o, b)
		}
		back, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		b2, _ := Encode(back)
		if string(b2) != string(b) {
			t.Errorf("round trip changed value:\n%s\n%s", b, b2)
		}
	}
	// DecodeAs agrees with Decode on every refusal, and says what it got.
	host := mustEncode(t, goodHostMemif())
	for _, tc := range []struct {
		data []byte
		want string
	}{
		{host, "kind HostInterface, want Volume"},
		{[]byte(`{"apiVersion":"uspace/v1","kind":"HostInterface","minor":"x","name":7}`), "decode HostInterface"},
		{[]byte(`{"apiVersion":"uspace/v2","kind":"Volume"}`), `apiVersion "uspace/v2"`},
		{[]byte(`{"apiVersion":"uspace/v1","kind":"Gizmo"}`), `unknown kind "Gizmo"`},
		{[]byte(`{"apiVersion":"uspace/v1","kind":"Volume"}`), "decode Volume"},
		{[]byte(`not json`), "decode value"},
	} {
		_, err := DecodeAs[Volume](tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeAs[Volume](%s) = %v, want an error with %q", tc.data, err, tc.want)
		}
	}
	if v, err := DecodeAs[HostInterface](host); err != nil || v.Name != goodHostMemif().Name {
		t.Errorf("DecodeAs[HostInterface] = %+v, %v", v, err)
	}
}

func mustEncode(t *testing.T, o Object) []byte {
	t.Helper()
	b, err := Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidationNamesTheField(t *testing.T) {
	cases := []struct {
		name  string
		obj   Object
		field string
	}{
		{"host with slash", func() Object { o := goodHostMemif(); o.Host = "a/b"; return o }(), "host"},
		{"container with dotdot", func() Object { o := goodHostMemif(); o.Container = "a..b"; return o }(), "container"},
		{"ifname too long", func() Object { o := goodHostMemif(); o.Name = "abcdefghijklmnop"; return o }(), "name"},
		{"ifname with colon", func() Object { o := goodHostMemif(); o.Name = "eth0:1"; return o }(), "name"},
		{"bad memif role", func() Object { o := goodHostMemif(); o.Memif.Role = "leader"; return o }(), "memif.role"},
		{"bad memif mode", func() Object { o := goodHostMemif(); o.Memif.Mode = "tun"; return o }(), "memif.mode"},
		{"inject-punt memif (crashes VPP 25.02)", func() Object { o := goodHostMemif(); o.Memif.Mode = MemifInjectPunt; return o }(), "memif.mode"},
		{"relative socket", func() Object { o := goodHostMemif(); o.Memif.SocketPath = "memif.sock"; return o }(), "memif.socketPath"},
		{"socket with dotdot", func() Object { o := goodHostMemif(); o.Memif.SocketPath = "/run/../etc/x.sock"; return o }(), "memif.socketPath"},
		{"socket too long", func() Object { o := goodHostMemif(); o.Memif.SocketPath = "/" + strings.Repeat("a", 107); return o }(), "memif.socketPath"},
		{"ring not power of two", func() Object { o := goodHostMemif(); o.Memif.RingSize = 1000; return o }(), "memif.ringSize"},
		{"mtu too small", func() Object { o := goodHostMemif(); o.MTU = 10; return o }(), "mtu"},
		{"bad mac", func() Object { o := goodHostMemif(); o.MAC = "zz:zz"; return o }(), "mac"},
		{"bridge without id", func() Object { o := goodHostMemif(); o.Bridge = 0; return o }(), "bridgeDomain"},
		{"unknown type", func() Object { o := goodHostMemif(); o.Type = "veth"; return o }(), "type"},
		{"memif type with vhost spec", func() Object {
			o := goodHostMemif()
			o.Vhost = &VhostSpec{Mode: VhostClient, SocketPath: "/x"}
			return o
		}(), "memif"},
		{"bad vhost mode", &HostInterface{Host: "h", Container: "c", Name: "e", Type: IfTypeVhostUser, NetType: NetTypeInterface,
			Vhost: &VhostSpec{Mode: "both", SocketPath: "/x"}}, "vhost.mode"},
		{"bad ip", &ContainerInterface{Host: "h", Container: "c", Name: "e", Type: IfTypeMemif,
			Memif: &MemifSpec{Role: MemifSlave, Mode: MemifEthernet, SocketPath: "/x"}, IPs: []IPAddress{{Address: "10.1.1.300/24"}}}, "ips[0].address"},
		{"bad route gw", &ContainerInterface{Host: "h", Container: "c", Name: "e", Type: IfTypeMemif,
			Memif: &MemifSpec{Role: MemifSlave, Mode: MemifEthernet, SocketPath: "/x"}, Routes: []Route{{Dst: "0.0.0.0/0", GW: "gw"}}}, "routes[0].gw"},
		{"volume one char", func() Object { o := goodVolume(); o.Name = "v"; return o }(), "name"},
		{"volume type", func() Object { o := goodVolume(); o.Type = "nvme"; return o }(), "type"},
		{"volume relative root", func() Object { o := goodVolume(); o.Root = "vhost"; return o }(), "root"},
		{"volume minor", func() Object { o := goodVolume(); o.Minor = 256; return o }(), "minor"},
		{"volume block size", func() Object { o := goodVolume(); o.Malloc.BlockSize = 1000; return o }(), "malloc.blockSize"},
		{"volume size", func() Object { o := goodVolume(); o.Malloc.SizeBytes = 4097; return o }(), "malloc.sizeBytes"},
		{"volume socket too long", func() Object { o := goodVolume(); o.Root = "/" + strings.Repeat("r", 100); return o }(), "device"},
		{"network id", &Network{Name: "n"}, "bridgeDomain"},
		{"meta network name", &ContainerMeta{Host: "h", Container: "c", Interfaces: []string{"net1"}, Networks: map[string]string{"net1": "../n"}}, "networks[net1]"},
		{"meta network ifname", &ContainerMeta{Host: "h", Container: "c", Networks: map[string]string{"a/b": "n"}}, "networks"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.obj.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			if !strings.Contains(err.Error(), "invalid "+c.field+" ") {
				t.Errorf("error %q does not name field %q", err, c.field)
			}
			if _, err := Encode(c.obj); err == nil {
				t.Error("Encode accepted an invalid object")
			}
		})
	}
}

func TestSocketPathRoot(t *testing.T) {
	root := "/var/run/vpp/cni/shared"
	if err := ValidateSocketPath("s", root+"/memif.sock", root); err != nil {
		t.Errorf("inside root: %v", err)
	}
	for _, p := range []string{"/var/run/vpp/cni/sharedX/m.sock", root, "/tmp/m.sock"} {
		if err := ValidateSocketPath("s", p, root); err == nil {
			t.Errorf("%q accepted outside root", p)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, in := range []string{
		`not json`,
		`{"apiVersion":"uspace/v2","kind":"Network","name":"n","bridgeDomain":1}`,
		`{"apiVersion":"uspace/v1","kind":"Gadget"}`,
		`{"apiVersion":"uspace/v1","kind":"Network","name":"n","bridgeDomain":"one"}`,
		`{"apiVersion":"uspace/v1","kind":"Network","name":"../n","bridgeDomain":1}`,
	} {
		if o, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%s) = %+v, want error", in, o)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(`{"apiVersion":"uspace/v1","kind":"Network","name":"n","bridgeDomain":1}`)
	f.Add(`{"apiVersion":"uspace/v1","kind":"Volume","host":"h","name":"vv","type":"blk","device":"d0","root":"/r","bdev":"b0"}`)
	f.Fuzz(func(t *testing.T, s string) {
		o, err := Decode([]byte(s))
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same value.
		b, err := Encode(o)
		if err != nil {
			t.Fatalf("decoded %s but cannot encode it: %v", s, err)
		}
		o2, err := Decode(b)
		if err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if b2, _ := Encode(o2); string(b2) != string(b) {
			t.Fatalf("unstable: %s vs %s", b, b2)
		}
	})
}

// TestVolumeStatusPaths: the host agent deletes the paths a volume status
// names, so a status naming anything but a volume's node and socket is
// refused when read (issue 20 item 5).
func TestVolumeStatusPaths(t *testing.T) {
	ok := &VolumeStatus{DevicePath: "/r/block/devices/vb0", SocketPath: "/r/block/sockets/vb0", Controller: "vb0", Bdev: "Malloc0"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []VolumeStatus{
		{DevicePath: "/etc/x"},
		{DevicePath: "/r/block/devices/../../etc"},
		{SocketPath: "/r/block/devices/vb0"},
		{DevicePath: "/r/block/devices/vb0", SocketPath: "/other/block/sockets/vb0"},
		{DevicePath: "/r/block/devices/vb0", SocketPath: "/r/block/sockets/vb1"},
		{DevicePath: "relative/block/devices/vb0"},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
		b, _ := json.Marshal(struct {
			TypeMeta
			VolumeStatus
		}{TypeMeta{APIVersion, KindVolumeStatus}, bad})
		if _, err := DecodeAs[VolumeStatus](b); err == nil {
			t.Errorf("%+v decoded", bad)
		}
	}
	for _, tc := range []struct {
		path string
		ok   bool
	}{{"/r/block/devices/x", true}, {"/r", false}, {"/rx/block", false}, {"/etc/x", false}, {"/s/a", true}} {
		if err := UnderRoot("p", tc.path, []string{"/r", "/s"}); (err == nil) != tc.ok {
			t.Errorf("UnderRoot(%s) = %v", tc.path, err)
		}
	}
}

// A status's socket path is what an agent may remove once the intent is
// gone: it is held to the rules of an intent's.
func TestInterfaceStatusValidatesItsPaths(t *testing.T) {
	for _, p := range []string{"relative.sock", "/a/../etc/x", "/a//b"} {
		if err := (&InterfaceStatus{SocketPath: p}).Validate(); err == nil {
			t.Errorf("status with socketPath %q accepted", p)
		}
	}
	if err := (&InterfaceStatus{Retrying: true}).Validate(); err == nil {
		t.Error("retrying without an error accepted")
	}
	if err := (&InterfaceStatus{SocketPath: "/run/x.sock", Error: "e", Retrying: true}).Validate(); err != nil {
		t.Error(err)
	}
}

// A value is decoded for where it is: only as the kind its key holds, and
// only with the names of its key.
func TestDecodeAt(t *testing.T) {
	k, err := ParseKey(InterfaceKey("node1", "c1", "net1"))
	if err != nil {
		t.Fatal(err)
	}
	enc := func(o Object) []byte {
		b, err := Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if hi, err := DecodeAt[HostInterface](k, enc(goodHostMemif())); err != nil || hi.Name != "net1" {
		t.Fatalf("its own value: %+v %v", hi, err)
	}
	uplink := enc(&Uplink{Host: "node1", HostIfName: "eth0", Address: "10.0.0.1/24"})
	if _, err := DecodeAt[HostInterface](k, uplink); err == nil || !strings.Contains(err.Error(), "kind Uplink, want HostInterface") {
		t.Errorf("an Uplink under an interface key: %v", err)
	}
	if _, err := DecodeAt[Uplink](k, uplink); err == nil || !strings.Contains(err.Error(), "holds HostInterface values, not Uplink") {
		t.Errorf("decoded as another kind than its key holds: %v", err)
	}
	other := goodHostMemif()
	other.Container, other.Name = "c2", "net2"
	_, err = DecodeAt[HostInterface](k, enc(other))
	var fe *FieldError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), `invalid container "c2": must be "c1"`) || !strings.Contains(err.Error(), `invalid name "net2"`) {
		t.Errorf("names of another key: %v", err)
	}
	sk, _ := ParseKey(StatusKey(Key{Kind: KindTunnelKey, Host: "node1", Network: "n", Peer: "node2"}))
	if _, err := DecodeAt[InterfaceStatus](sk, enc(&InterfaceStatus{Ready: true})); err != nil {
		t.Errorf("a tunnel's status: %v", err)
	}
	mk, _ := ParseKey(MemberKey("node2", "n"))
	if _, err := DecodeAt[Member](mk, enc(&Member{Host: "node3", Network: "n", VNI: 1, Underlay: "192.0.2.3"})); err == nil {
		t.Error("a member of another host under node2's key")
	}
}

func TestEqualDecoded(t *testing.T) {
	s := &InterfaceStatus{ObservedRevision: 7, Ready: true, SwIfIndex: 3, Bridge: 4}
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(decoded, &InterfaceStatus{ObservedRevision: 7, Ready: true, SwIfIndex: 3, Bridge: 4}) {
		t.Error("a decoded status differs from a fresh one with the same fields")
	}
	if Equal(decoded, &InterfaceStatus{ObservedRevision: 7, Ready: true, SwIfIndex: 3, Bridge: 5}) {
		t.Error("a decoded status equals one with another bridge domain")
	}
}

// Decode reads a value the same whichever way its fields come: as Encode
// writes it (type meta first, the one parse), reordered, or with its kind
// repeated further on (the last one counts, as in any JSON read here).
func TestDecodeFieldOrder(t *testing.T) {
	b, err := Encode(&InterfaceStatus{ObservedRevision: 7, Ready: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), encodedPrefix) {
		t.Fatalf("Encode wrote %s, which does not start with %s", b, encodedPrefix)
	}
	for _, tc := range []struct {
		value string
		want  Object
	}{
		{string(b), &InterfaceStatus{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindInterfaceStatus}, ObservedRevision: 7, Ready: true}},
		{`{"ready":true,"kind":"InterfaceStatus","observedRevision":7,"apiVersion":"uspace/v1","updatedAt":"0001-01-01T00:00:00Z"}`,
			&InterfaceStatus{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindInterfaceStatus}, ObservedRevision: 7, Ready: true}},
		{`{"apiVersion":"uspace/v1","kind":"InterfaceStatus","observedRevision":7,"ready":true,"kind":"VolumeStatus","updatedAt":"0001-01-01T00:00:00Z"}`,
			&VolumeStatus{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindVolumeStatus}, ObservedRevision: 7, Ready: true}},
	} {
		got, err := Decode([]byte(tc.value))
		if err != nil {
			t.Fatalf("Decode(%s): %v", tc.value, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Decode(%s) = %#v, want %#v", tc.value, got, tc.want)
		}
	}
	if _, err := Decode([]byte(`{"apiVersion":"uspace/v1","kind":"InterfaceStatus","observedRevision":"seven"}`)); err == nil || !strings.Contains(err.Error(), "decode InterfaceStatus") {
		t.Errorf("a field of the wrong type: %v, want decode InterfaceStatus's error", err)
	}
}
