package host

import (
	"fmt"
	"testing"

	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// A snapshot's intents are decoded ahead, each handed out once and only
// for the value it was decoded from; a relist replaces them all.
func TestPredecoded(t *testing.T) {
	intent := func(ctr string, bridge uint32) store.KV {
		hi := &schema.HostInterface{Host: "h1", Container: ctr, Name: "net1", Type: schema.IfTypeMemif, NetType: schema.NetTypeBridge, Bridge: bridge,
			Memif: &schema.MemifSpec{Role: schema.MemifMaster, Mode: schema.MemifEthernet, SocketPath: "/run/" + ctr + ".sock"}}
		v, err := schema.Encode(hi)
		if err != nil {
			t.Fatal(err)
		}
		return store.KV{Key: schema.InterfaceKey("h1", ctr, "net1"), Value: v}
	}
	var kvs []store.KV
	for i := range 101 {
		kvs = append(kvs, intent(fmt.Sprintf("c%03d", i), 4))
	}
	var p predecoded
	p.fill(append(kvs, store.KV{Key: schema.InterfaceKey("h1", "bad", "net1"), Value: []byte(`{"kind":"Volume"}`)}))

	for i, kv := range kvs {
		hi, err, ok := p.take(vppstate.Owner(kv.Key), kv.Value)
		if !ok || err != nil || hi.Container != fmt.Sprintf("c%03d", i) || hi.Bridge != 4 {
			t.Fatalf("take %s: %+v, %v, %v; want its decoded intent", kv.Key, hi, err, ok)
		}
		if _, _, ok := p.take(vppstate.Owner(kv.Key), kv.Value); ok {
			t.Fatalf("%s handed out twice", kv.Key)
		}
	}
	bad := schema.InterfaceKey("h1", "bad", "net1")
	if _, err, ok := p.take(vppstate.Owner(bad), []byte(`{"kind":"Volume"}`)); !ok || err == nil {
		t.Fatalf("a value that does not decode: %v, %v; want its error held", err, ok)
	}

	p.fill(kvs[:2])
	changed := intent("c000", 5)
	if _, _, ok := p.take(vppstate.Owner(changed.Key), changed.Value); ok {
		t.Fatal("a decode handed out for a value other than its own")
	}
	if _, _, ok := p.take(vppstate.Owner(kvs[0].Key), kvs[0].Value); ok {
		t.Fatal("an entry outlived a take for another value")
	}
	if _, _, ok := p.take(vppstate.Owner(kvs[2].Key), kvs[2].Value); ok {
		t.Fatal("an entry outlived the relist that did not hold it")
	}
	if p.m == nil || len(p.m) != 1 {
		t.Fatalf("%d entries left, want c001's alone", len(p.m))
	}
}
