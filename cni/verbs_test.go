package cni

import (
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/uspace-io/uspace/schema"
)

// GC deletes only with an explicit list: cnitool gc sends none.
func TestValidAttachments(t *testing.T) {
	for _, tc := range []struct {
		conf  string
		given bool
		n     int
	}{
		{`{"name":"n"}`, false, 0},
		{`{"name":"n","cni.dev/valid-attachments":null}`, true, 0},
		{`{"name":"n","cni.dev/valid-attachments":[]}`, true, 0},
		{`{"name":"n","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"},{"containerID":"b","ifname":"eth0"}]}`, true, 2},
		// The misspelt key of spec 1.1.0, which libcni also sends.
		{`{"name":"n","cni.dev/attachments":[{"containerID":"a","ifname":"eth0"}]}`, true, 1},
	} {
		valid, given, err := validAttachments([]byte(tc.conf))
		if err != nil || given != tc.given || len(valid) != tc.n {
			t.Errorf("%s: %v %v %v", tc.conf, valid, given, err)
		}
	}
	valid, _, _ := validAttachments([]byte(`{"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}`))
	if !valid[types.GCAttachment{ContainerID: "a", IfName: "eth0"}] || valid[types.GCAttachment{ContainerID: "a", IfName: "eth1"}] {
		t.Errorf("%v", valid)
	}
	if _, _, err := validAttachments([]byte(`{"cni.dev/valid-attachments":"all"}`)); err == nil {
		t.Error("a string list accepted")
	}
}

// CHECK names every drifting field.
func TestDiffObjects(t *testing.T) {
	a := &schema.ContainerInterface{Host: "h", Container: "c", Name: "eth0", Type: schema.IfTypeMemif,
		IPs: []schema.IPAddress{{Address: "10.0.0.2/24"}}}
	b := *a
	b.IPs = []schema.IPAddress{{Address: "10.0.0.3/24"}, {Address: "fd00::3/64"}}
	b.MAC = "02:00:00:00:00:01"
	d := diffObjects(a, &b)
	got := strings.Join(d, "; ")
	for _, want := range []string{`ips[0].address is "10.0.0.2/24", want "10.0.0.3/24"`, `ips[1].address is absent, want "fd00::3/64"`, `mac is absent, want "02:00:00:00:00:01"`} {
		if !strings.Contains(got, want) {
			t.Errorf("diff %q lacks %q", got, want)
		}
	}
	if d := diffObjects(a, a); len(d) != 0 {
		t.Errorf("self diff %v", d)
	}
}
