package schema

import (
	"strings"
	"testing"
)

func TestKeyRoundTrip(t *testing.T) {
	cases := []struct {
		key  string
		want Key
	}{
		{"/uspace/v1/hosts/node-1/agent", Key{Kind: KindAgentKey, Host: "node-1"}},
		{"/uspace/v1/hosts/node-1/interfaces/cnitool-0a1b2c/net1", Key{Kind: KindInterfaceKey, Host: "node-1", Container: "cnitool-0a1b2c", Interface: "net1"}},
		{"/uspace/v1/hosts/h/volumes/volume0", Key{Kind: KindVolumeKey, Host: "h", Volume: "volume0"}},
		{"/uspace/v1/hosts/h/containers/c1/meta", Key{Kind: KindContainerMetaKey, Host: "h", Container: "c1"}},
		{"/uspace/v1/hosts/h/containers/c1/interfaces/eth0", Key{Kind: KindContainerInterfaceKey, Host: "h", Container: "c1", Interface: "eth0"}},
		{"/uspace/v1/networks/memif-network", Key{Kind: KindNetworkKey, Network: "memif-network"}},
		{"/uspace/v1/status/hosts/h/interfaces/c1/net1", Key{Kind: KindInterfaceKey, Status: true, Host: "h", Container: "c1", Interface: "net1"}},
		{"/uspace/v1/status/hosts/h/containers/c1/interfaces/eth0", Key{Kind: KindContainerInterfaceKey, Status: true, Host: "h", Container: "c1", Interface: "eth0"}},
		{"/uspace/v1/status/hosts/h/volumes/volume0", Key{Kind: KindVolumeKey, Status: true, Host: "h", Volume: "volume0"}},
		{"/uspace/v1/members/h/net-a", Key{Kind: KindMemberKey, Host: "h", Network: "net-a"}},
		{"/uspace/v1/hosts/h/tunnels/net-a/h2", Key{Kind: KindTunnelKey, Host: "h", Network: "net-a", Peer: "h2"}},
		{"/uspace/v1/status/hosts/h/tunnels/net-a/h2", Key{Kind: KindTunnelKey, Status: true, Host: "h", Network: "net-a", Peer: "h2"}},
		{"/uspace/v1/status/hosts/h/uplink", Key{Kind: KindUplinkKey, Status: true, Host: "h"}},
	}
	for _, c := range cases {
		got, err := ParseKey(c.key)
		if err != nil {
			t.Fatalf("ParseKey(%q): %v", c.key, err)
		}
		if got != c.want {
			t.Errorf("ParseKey(%q) = %+v, want %+v", c.key, got, c.want)
		}
		if s := got.String(); s != c.key {
			t.Errorf("String() = %q, want %q", s, c.key)
		}
	}
}

func TestKeyHelpersMatchLayout(t *testing.T) {
	checks := map[string]string{
		AgentKey("h"):                        "/uspace/v1/hosts/h/agent",
		InterfaceKey("h", "c", "i"):          "/uspace/v1/hosts/h/interfaces/c/i",
		VolumeKey("h", "vv"):                 "/uspace/v1/hosts/h/volumes/vv",
		ContainerMetaKey("h", "c"):           "/uspace/v1/hosts/h/containers/c/meta",
		ContainerInterfaceKey("h", "c", "i"): "/uspace/v1/hosts/h/containers/c/interfaces/i",
		NetworkKey("n"):                      "/uspace/v1/networks/n",
		MemberKey("h", "n"):                  "/uspace/v1/members/h/n",
		TunnelKey("h", "n", "p"):             "/uspace/v1/hosts/h/tunnels/n/p",
		UplinkKey("h"):                       "/uspace/v1/hosts/h/uplink",
		StatusKey(Key{Kind: KindVolumeKey, Host: "h", Volume: "vv"}): "/uspace/v1/status/hosts/h/volumes/vv",
		StatusContainerPrefix("h", "c"):                              "/uspace/v1/status/hosts/h/containers/c/",
		ContainerPrefix("h", "c"):                                    "/uspace/v1/hosts/h/containers/c/",
		ContainerInterfacesPrefix("h", "c"):                          "/uspace/v1/hosts/h/interfaces/c/",
	}
	for got, want := range checks {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	// A prefix of one host must not cover another whose name extends it.
	if strings.HasPrefix(AgentKey("ab"), HostPrefix("a")) {
		t.Error("HostPrefix(a) covers host ab")
	}
	if strings.HasPrefix(MemberKey("ab", "n"), MemberHostPrefix("a")) {
		t.Error("MemberHostPrefix(a) covers host ab")
	}
}

func TestParseKeyRejects(t *testing.T) {
	for _, k := range []string{
		"",
		"/uspace/v2/hosts/h/agent",
		"/uspace/v1/",
		"/uspace/v1/hosts/h",
		"/uspace/v1/hosts/h/agent/extra",
		"/uspace/v1/hosts//agent",
		"/uspace/v1/hosts/../agent",
		"/uspace/v1/hosts/h/interfaces/c",
		"/uspace/v1/hosts/h/interfaces/c/this-name-is-too-long",
		"/uspace/v1/hosts/h/interfaces/-c/eth0",
		"/uspace/v1/hosts/h/volumes/v",
		"/uspace/v1/hosts/h/containers/c/other",
		"/uspace/v1/networks/a/b",
		"/uspace/v1/status/status/hosts/h/agent",
	} {
		if got, err := ParseKey(k); err == nil {
			t.Errorf("ParseKey(%q) = %+v, want error", k, got)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add("/uspace/v1/hosts/h/interfaces/c/net1")
	f.Add("/uspace/v1/status/hosts/h/containers/c/interfaces/eth0")
	f.Add("/uspace/v1/networks/n")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Fatalf("ParseKey(%q).String() = %q", s, k.String())
		}
		if k2, err := ParseKey(k.String()); err != nil || k2 != k {
			t.Fatalf("round trip of %q: %+v, %v", s, k2, err)
		}
	})
}
