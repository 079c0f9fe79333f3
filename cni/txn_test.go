package cni

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store/embedetcd"
	"github.com/uspace-io/uspace/store/etcdconf"
	"github.com/uspace-io/uspace/store/lite"
)

var (
	etcdOnce sync.Once
	etcdEps  []string
	etcdErr0 error
	etcdStop func()
)

// testStore starts one embedded etcd for the package's transaction tests
// and gives each test its own host name, so tests never see each other's
// keys.
func testStore(t *testing.T) *lite.Client {
	t.Helper()
	etcdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cni-etcd")
		if err != nil {
			etcdErr0 = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e, err := embedetcd.Start(ctx, embedetcd.Config{Dir: dir, ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0"})
		if err != nil {
			etcdErr0 = err
			return
		}
		etcdEps = e.Endpoints()
		etcdStop = func() { e.Close(); os.RemoveAll(dir) }
	})
	if etcdErr0 != nil {
		t.Fatalf("embedded etcd: %v", etcdErr0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := lite.Connect(ctx, etcdconf.Config{Endpoints: etcdEps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestMain(m *testing.M) {
	code := m.Run()
	if etcdStop != nil {
		etcdStop()
	}
	os.Exit(code)
}

func hostName(t *testing.T) string {
	return strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name()))
}

func keysUnder(t *testing.T, st *lite.Client, prefix string) []string {
	t.Helper()
	kvs, _, err := st.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key)
	}
	return out
}

// Concurrent ADDs on one configured socket file get distinct memif ids,
// lowest first, through the prefix guard.
func TestWriteIntentsSharedSocketIDs(t *testing.T) {
	st := testStore(t)
	host := hostName(t)
	conf := mustParse(t, strings.Replace(readmeMemif, `"role":"master","mode":"ethernet"`, `"role":"master","mode":"ethernet","socketfile":"shared.sock"`, 1))
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			att := Attachment{Host: host, ContainerID: fmt.Sprintf("c%02d", i), IfName: "eth0", Netns: "/ns"}
			in, err := BuildIntents(conf, att, nil, time.Now())
			if err == nil {
				_, err = writeIntents(context.Background(), st, in, att, true, nil)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	ids := map[uint32]string{}
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("c%02d: %v", i, errs[i])
		}
		kv, _, err := st.Get(context.Background(), schema.InterfaceKey(host, fmt.Sprintf("c%02d", i), "eth0"))
		if err != nil || kv == nil {
			t.Fatalf("c%02d: %v %v", i, kv, err)
		}
		hi, _ := schema.DecodeAs[schema.HostInterface](kv.Value)
		if other, dup := ids[hi.Memif.ID]; dup {
			t.Errorf("memif id %d given to %s and c%02d", hi.Memif.ID, other, i)
		}
		ids[hi.Memif.ID] = fmt.Sprintf("c%02d", i)
		ckv, _, _ := st.Get(context.Background(), schema.ContainerInterfaceKey(host, fmt.Sprintf("c%02d", i), "eth0"))
		ci, _ := schema.DecodeAs[schema.ContainerInterface](ckv.Value)
		if ci.Memif.ID != hi.Memif.ID || ci.Memif.SocketPath != hi.Memif.SocketPath {
			t.Errorf("container side %+v, host side %+v", ci.Memif, hi.Memif)
		}
	}
	for id := uint32(0); id < n; id++ {
		if _, ok := ids[id]; !ok {
			t.Errorf("id %d unused: ids %v", id, ids)
		}
	}
	// A freed id is handed out again.
	if _, err := deleteAttachment(context.Background(), st, Attachment{Host: host, ContainerID: "c03", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	att := Attachment{Host: host, ContainerID: "late", IfName: "eth0", Netns: "/ns"}
	in, _ := BuildIntents(conf, att, nil, time.Now())
	if _, err := writeIntents(context.Background(), st, in, att, true, nil); err != nil {
		t.Fatal(err)
	}
	if in.Host.Memif.ID != ids2id(ids, "c03") {
		t.Errorf("late got id %d, want c03's freed id %d", in.Host.Memif.ID, ids2id(ids, "c03"))
	}
}

func ids2id(ids map[uint32]string, who string) uint32 {
	for id, w := range ids {
		if w == who {
			return id
		}
	}
	return 1 << 31
}

func TestWriteIntentsRepeatAndClash(t *testing.T) {
	st := testStore(t)
	host := hostName(t)
	ctx := context.Background()
	conf := mustParse(t, readmeMemif)
	att := Attachment{Host: host, ContainerID: "c1", IfName: "eth0", Netns: "/ns1", Pod: PodArgs{Namespace: "ns", Name: "p"}}
	in, _ := BuildIntents(conf, att, testIPAM(t), time.Now())
	w1, err := writeIntents(ctx, st, in, att, false, nil)
	if err != nil || w1.Adopted {
		t.Fatalf("first: %+v %v", w1, err)
	}
	// The same ADD again (a retry): nothing written, same revision.
	in2, _ := BuildIntents(conf, att, testIPAM(t), time.Now().Add(time.Minute))
	w2, err := writeIntents(ctx, st, in2, att, false, nil)
	if err != nil || !w2.Adopted || w2.Rev != w1.Rev {
		t.Fatalf("repeat: %+v %v (first %+v)", w2, err, w1)
	}
	// Different settings for the same attachment: refused, nothing changed.
	other := mustParse(t, strings.Replace(readmeMemif, `"bridgeName":"4"`, `"bridgeName":"5"`, 1))
	in3, _ := BuildIntents(other, att, testIPAM(t), time.Now())
	_, err = writeIntents(ctx, st, in3, att, false, nil)
	var ex *errExists
	if !errors.As(err, &ex) || !strings.Contains(err.Error(), "host-side") {
		t.Fatalf("clash: %v", err)
	}
	// A second interface of the same container joins the meta.
	att2 := att
	att2.IfName = "eth1"
	in4, _ := BuildIntents(conf, att2, nil, time.Now())
	if _, err := writeIntents(ctx, st, in4, att2, false, nil); err != nil {
		t.Fatal(err)
	}
	meta := getMeta(t, st, host, "c1")
	if strings.Join(meta.Interfaces, ",") != "eth0,eth1" || meta.PodName != "p" || meta.Netns != "/ns1" {
		t.Errorf("meta %+v", meta)
	}
	// Another netns for the same container ID is refused.
	att3 := att
	att3.IfName, att3.Netns = "eth2", "/other"
	in5, _ := BuildIntents(conf, att3, nil, time.Now())
	if _, err := writeIntents(ctx, st, in5, att3, false, nil); !errors.As(err, &ex) || !strings.Contains(err.Error(), "netns") {
		t.Errorf("netns clash: %v", err)
	}

	// DEL one: meta keeps the other; DEL the other: everything gone; DEL
	// again: nothing to do.
	if d, err := deleteAttachment(ctx, st, att); err != nil || !d.Removed {
		t.Fatalf("del eth0: %+v %v", d, err)
	}
	if meta := getMeta(t, st, host, "c1"); strings.Join(meta.Interfaces, ",") != "eth1" {
		t.Errorf("meta after one DEL: %+v", meta)
	}
	if d, err := deleteAttachment(ctx, st, att2); err != nil || !d.Removed {
		t.Fatalf("del eth1: %+v %v", d, err)
	}
	if d, err := deleteAttachment(ctx, st, att2); err != nil || d.Removed {
		t.Errorf("second DEL: %+v %v", d, err)
	}
	if keys := keysUnder(t, st, schema.HostPrefix(host)); len(keys) != 0 {
		t.Errorf("left: %v", keys)
	}
}

// Only part of an attachment in etcd (written by hand, or by an older
// writer): DEL removes what is there.
func TestDeletePartial(t *testing.T) {
	st := testStore(t)
	host := hostName(t)
	ctx := context.Background()
	conf := mustParse(t, readmeMemif)
	att := Attachment{Host: host, ContainerID: "c1", IfName: "eth0", Netns: "/ns1"}
	in, _ := BuildIntents(conf, att, nil, time.Now())
	val, _ := schema.Encode(in.Container)
	if _, err := st.Txn(ctx, nil, []lite.Op{lite.Put(schema.ContainerInterfaceKey(host, "c1", "eth0"), val)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := deleteAttachment(ctx, st, att); err != nil {
		t.Fatal(err)
	}
	if keys := keysUnder(t, st, schema.HostPrefix(host)); len(keys) != 0 {
		t.Errorf("left: %v", keys)
	}
}

func getMeta(t *testing.T, st *lite.Client, host, cid string) *schema.ContainerMeta {
	t.Helper()
	kv, _, err := st.Get(context.Background(), schema.ContainerMetaKey(host, cid))
	if err != nil || kv == nil {
		t.Fatalf("meta %s: %v %v", cid, kv, err)
	}
	m, err := schema.DecodeAs[schema.ContainerMeta](kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
