package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/schema"
)

// The host side's MTU, from the agent's status, reaches the container-side
// intent in one guarded write, is kept by a repeated ADD (which compares
// only what the config decides), and shows in the result from CNI 1.1 on.
func TestCarryMTU(t *testing.T) {
	st := testStore(t)
	host := hostName(t)
	ctx := context.Background()
	conf := mustParse(t, readmeMemif)
	att := Attachment{Host: host, ContainerID: "c1", IfName: "eth0", Netns: "/ns1"}
	in, _ := BuildIntents(conf, att, testIPAM(t), time.Now())
	w, err := writeIntents(ctx, st, in, att, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	status := &schema.InterfaceStatus{ObservedRevision: w.Rev, Ready: true, InterfaceName: "memif1/0", MTU: 1450}
	if err := carryMTU(ctx, st, att, in.Container, w.CtrRev, status); err != nil || in.Container.MTU != 1450 {
		t.Fatalf("carry: %v, intent MTU %d", err, in.Container.MTU)
	}
	ctrKey := att.ContainerKey().String()
	kv, _, err := st.Get(ctx, ctrKey)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := schema.DecodeAs[schema.ContainerInterface](kv.Value); err != nil || c.MTU != 1450 {
		t.Fatalf("container-side intent after carry: %+v %v", c, err)
	}
	// Unchanged: nothing written.
	if err := carryMTU(ctx, st, att, in.Container, kv.ModRevision, status); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := st.Get(ctx, ctrKey); again.ModRevision != kv.ModRevision {
		t.Errorf("an unchanged MTU was written again (revision %d -> %d)", kv.ModRevision, again.ModRevision)
	}

	// A repeated ADD builds the intents from the config (no MTU): the
	// carried one is not a difference.
	pre, _ := BuildIntents(conf, att, nil, time.Now())
	cur, err := readAttachment(ctx, st, att, false)
	if err != nil {
		t.Fatal(err)
	}
	prior, err := priorAttachment(cur, pre, att, true)
	if err != nil || prior == nil || cur.host.ModRevision != w.Rev || prior.Container.MTU != 1450 {
		t.Fatalf("prior attachment: %+v at %d, %v", prior, cur.host.ModRevision, err)
	}
	in2, _ := BuildIntents(conf, att, testIPAM(t), time.Now())
	if w2, err := writeIntents(ctx, st, in2, att, false, nil); err != nil || !w2.Adopted || in2.Container.MTU != 1450 {
		t.Fatalf("repeat: %+v %v, intent MTU %d", w2, err, in2.Container.MTU)
	}

	for v, want := range map[string]int{"1.1.0": 1450, "1.0.0": 0} {
		r, err := BuildResult(v, prior, att.Netns, nil, status)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := r.PrintTo(&buf); err != nil {
			t.Fatal(err)
		}
		var out struct {
			Interfaces []struct {
				Mtu *int `json:"mtu"`
			}
		}
		if err := json.Unmarshal(buf.Bytes(), &out); err != nil || len(out.Interfaces) != 2 {
			t.Fatalf("%s: %s %v", v, buf.String(), err)
		}
		for _, itf := range out.Interfaces {
			if (itf.Mtu == nil) != (want == 0) || (itf.Mtu != nil && *itf.Mtu != want) {
				t.Errorf("%s: %s, want mtu %d", v, buf.String(), want)
			}
		}
	}

	// The intent changed since this copy was read (another carry): the
	// guard fails, the transaction brings the intent back, and only its
	// MTU changes.
	stale := *in.Container
	status.MTU = 8950
	if err := carryMTU(ctx, st, att, &stale, w.CtrRev, status); err != nil || stale.MTU != 8950 {
		t.Fatalf("carry from a stale revision: %v, MTU %d", err, stale.MTU)
	}
	after, _, err := st.Get(ctx, ctrKey)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := schema.DecodeAs[schema.ContainerInterface](after.Value); err != nil || c.MTU != 8950 || len(c.IPs) == 0 || c.MAC != in.Container.MAC {
		t.Fatalf("container-side intent after a carry from a stale revision: %+v %v", c, err)
	}

	// The intent went meanwhile (a DEL): the carry fails and says so.
	if _, err := deleteAttachment(ctx, st, att); err != nil {
		t.Fatal(err)
	}
	status.MTU = 9000
	if err := carryMTU(ctx, st, att, in.Container, after.ModRevision, status); err == nil || !strings.Contains(err.Error(), "went while the host agent applied") {
		t.Errorf("carry after DEL: %v", err)
	}
	if keys := keysUnder(t, st, schema.HostPrefix(host)); len(keys) != 0 {
		t.Errorf("the failed carry wrote %v", keys)
	}
}
