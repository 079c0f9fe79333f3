package host

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	ifreconcile "github.com/uspace-io/uspace/agent/reconcile/interfaces"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// crossHost is what the host agent knows to join networks that span hosts
// (a network with a VNI): which of this host's interface intents are on
// which network, and every host's memberships (members watch). From them
// it derives this host's own memberships, which it publishes, and one
// VXLAN tunnel per (network, peer host with members), plus the uplink,
// which the interface reconcile converges like any interface.
//
// The derived keys (tunnels, uplink) live in the interface controller's
// desired cache beside the intents, so one worker owns every change to
// VPP, a restart re-creates them, and the sweep removes them when orphaned.
type crossHost struct {
	self     string
	underlay netip.Prefix // the uplink's address; its Addr is the tunnels' source
	uplink   string       // Linux interface of the af_packet uplink
	// uplinkMTU is the uplink's Linux MTU, read at start; overlayMTU the
	// most a network spanning hosts carries over it (setUplinkMTU).
	uplinkMTU, overlayMTU uint32

	mu      sync.Mutex
	local   map[string]localIf  // interface intent key -> its network
	members map[string]store.KV // every host's memberships, by member key
	derived map[string]store.KV // tunnels and uplink, as last handed over
	synced  chan struct{}       // closed by the first members snapshot
	once    sync.Once
}

// localIf is the part of an interface intent that decides membership.
type localIf struct {
	network string
	vni     uint32 // the intent's own; 0: the network's
	bridge  uint32
}

func newCrossHost(self, underlay, uplink string) (*crossHost, error) {
	if underlay == "" && uplink == "" {
		return nil, nil
	}
	p, err := netip.ParsePrefix(underlay)
	if err != nil || uplink == "" {
		return nil, fmt.Errorf("networks spanning hosts need both --underlay-ip, an address with prefix length (e.g. 192.168.77.1/24), and --uplink, the Linux interface that reaches the other hosts: got --underlay-ip %q --uplink %q", underlay, uplink)
	}
	if err := schema.ValidateIfName("--uplink", uplink); err != nil {
		return nil, err
	}
	return &crossHost{self: self, underlay: p, uplink: uplink, local: map[string]localIf{},
		members: map[string]store.KV{}, derived: map[string]store.KV{}, synced: make(chan struct{})}, nil
}

// noteIntentLocked records an interface intent (nil: deleted) and says
// whether that changed anything memberships are made of.
func (x *crossHost) noteIntentLocked(key string, value []byte) bool {
	old, had := x.local[key]
	hi, err := schema.DecodeAs[schema.HostInterface](value)
	if value == nil || err != nil || !joinsNetwork(hi) {
		delete(x.local, key)
		return had
	}
	l := localIf{network: hi.Network, vni: hi.VNI, bridge: hi.Bridge}
	x.local[key] = l
	return !had || old != l
}

// joinsNetwork says whether an interface is a member of its network's
// bridge domain, which spans hosts when the network has a VNI.
func joinsNetwork(hi *schema.HostInterface) bool {
	return hi.NetType == schema.NetTypeBridge && hi.Network != ""
}

// onMemberEvent records the members watch.
func (x *crossHost) onMemberEvent(ev store.Event) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch ev.Type {
	case store.Sync:
		x.members = make(map[string]store.KV, len(ev.Snapshot))
		for _, kv := range ev.Snapshot {
			x.members[kv.Key] = kv
		}
		x.once.Do(func() { close(x.synced) })
	case store.Put:
		x.members[ev.KV.Key] = ev.KV
	case store.Delete:
		delete(x.members, ev.KV.Key)
	}
}

// localNet is this host's side of one network that spans hosts.
type localNet struct {
	vni, bridge uint32
}

// localNets lists the networks this host has members of and their VNI:
// an intent's own, else the network's (networkVNI). Of intents that
// disagree the lowest VNI and bridge domain win, so every host picks the
// same.
func (x *crossHost) localNets(networkVNI func(string) uint32) map[string]localNet {
	nets := map[string]localNet{}
	for _, l := range x.local {
		vni := l.vni
		if vni == 0 {
			vni = networkVNI(l.network)
		}
		if vni == 0 {
			continue
		}
		n, ok := nets[l.network]
		if !ok || vni < n.vni || (vni == n.vni && l.bridge < n.bridge) {
			nets[l.network] = localNet{vni: vni, bridge: l.bridge}
		}
	}
	return nets
}

// ownMembers is what this host must publish: one Member per local network.
func (x *crossHost) ownMembers(nets map[string]localNet) map[string][]byte {
	out := make(map[string][]byte, len(nets))
	for name, n := range nets {
		b, err := schema.Encode(&schema.Member{Host: x.self, Network: name, VNI: n.vni, Underlay: x.underlay.Addr().String()})
		if err != nil {
			panic(fmt.Sprintf("encode member of validated names: %v", err)) // names were validated with their intents
		}
		out[schema.MemberKey(x.self, name)] = b
	}
	return out
}

// derive computes the tunnels and the uplink this host wants, as KVs of
// the interface controller. A tunnel's revision is its peer member's, so
// its status says which membership it reflects.
func (x *crossHost) derive(nets map[string]localNet) map[string]store.KV {
	out := map[string]store.KV{}
	up, err := schema.Encode(&schema.Uplink{Host: x.self, HostIfName: x.uplink, Address: x.underlay.String(), MTU: x.uplinkMTU})
	if err != nil {
		panic(fmt.Sprintf("encode uplink of validated flags: %v", err))
	}
	out[schema.UplinkKey(x.self)] = store.KV{Key: schema.UplinkKey(x.self), Value: up}
	for key, kv := range x.members {
		k, err := schema.ParseKey(key)
		if err != nil || k.Host == x.self {
			continue
		}
		n, ok := nets[k.Network]
		if !ok {
			continue
		}
		m, err := schema.DecodeAs[schema.Member](kv.Value)
		if err != nil {
			continue
		}
		t := &schema.Tunnel{Host: x.self, Network: k.Network, Peer: k.Host, VNI: n.vni,
			Src: x.underlay.Addr().String(), Dst: m.Underlay, Bridge: n.bridge}
		if m.VNI != n.vni {
			t.Error = fmt.Sprintf("host %s has network %s with VNI %d, this host with VNI %d: no tunnel until they agree", k.Host, k.Network, m.VNI, n.vni)
		}
		b, err := schema.Encode(t)
		if err != nil {
			continue // a peer's bad underlay: nothing to tunnel to
		}
		tk := schema.TunnelKey(x.self, k.Network, k.Host)
		out[tk] = store.KV{Key: tk, Value: b, ModRevision: kv.ModRevision}
	}
	return out
}

// diff returns what changed in derived since the last call, and records
// the new set.
func (x *crossHost) diff(next map[string]store.KV) (upserts []store.KV, deletes []string) {
	for k, kv := range next {
		if old, ok := x.derived[k]; !ok || !bytes.Equal(old.Value, kv.Value) || old.ModRevision != kv.ModRevision {
			upserts = append(upserts, kv)
		}
	}
	for k := range x.derived {
		if _, ok := next[k]; !ok {
			deletes = append(deletes, k)
		}
	}
	x.derived = next
	return upserts, deletes
}

// reconcileMember converges one of this host's member keys: put under the
// registration's lease while the host has members of the network, deleted
// otherwise. A host that dies leaves every network when its lease expires.
func (a *Agent) reconcileMember(ctx context.Context, key string, kv *store.KV) error {
	x := a.cross
	if x == nil {
		return nil
	}
	x.mu.Lock()
	have, published := x.members[key]
	x.mu.Unlock()
	if kv == nil {
		if !published {
			return nil
		}
		if _, err := a.st.Etcd().Delete(ctx, key); err != nil {
			return fmt.Errorf("leave network: delete %s: %w", key, err)
		}
		return nil
	}
	var lease clientv3.LeaseID
	if reg := a.regn.Load(); reg != nil {
		lease = reg.LeaseID()
	}
	if lease == 0 {
		return fmt.Errorf("publish %s: host not registered (no lease to bind it to)", key)
	}
	if published && have.Lease == int64(lease) && bytes.Equal(have.Value, kv.Value) {
		return nil
	}
	if _, err := a.st.Etcd().Put(ctx, key, string(kv.Value), clientv3.WithLease(lease)); err != nil {
		return fmt.Errorf("publish %s: %w", key, err)
	}
	return nil
}

// runCrossHost starts, in g, the members watch and the re-publication of
// this host's memberships under each new registration lease.
func (a *Agent) runCrossHost(ctx context.Context, g *errgroup.Group, reg *store.Registration) {
	g.Go(func() error {
		return a.st.ListWatch(ctx, schema.MembersPrefix(), func(ev store.Event) error {
			if ev.Type == store.Progress {
				return nil
			}
			a.cross.onMemberEvent(ev)
			a.crossHostChanged()
			return nil
		})
	})
	g.Go(func() error {
		for {
			select {
			case <-reg.Granted():
				a.members.EnqueueAll()
			case <-ctx.Done():
				return nil
			}
		}
	})
	a.log.Info("joining networks that span hosts", "underlay", a.cross.underlay.String(), "uplink", a.cross.uplink)
}

// networkVNI is the VNI of a network's optional Network object.
func (a *Agent) networkVNI(name string) uint32 {
	n, _ := a.network(name)
	return n.VNI
}

// replaceInterfaces installs a snapshot of the interface intents, with the
// tunnels and uplink derived from them in the same replace: a key missing
// for a moment would be queued as deleted.
func (a *Agent) replaceInterfaces(ifs []store.KV) {
	x := a.cross
	if x == nil {
		a.ifaces.Replace(ifs, ifreconcile.SweepKey)
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.local = map[string]localIf{}
	for _, kv := range ifs {
		x.noteIntentLocked(kv.Key, kv.Value)
	}
	nets := x.localNets(a.networkVNI)
	x.derived = x.derive(nets)
	all := slices.Clone(ifs)
	for _, kv := range x.derived {
		all = append(all, kv)
	}
	a.ifaces.Replace(all, ifreconcile.SweepKey)
	a.publishLocked(nets)
}

// interfaceChanged follows a put or delete of one interface intent.
func (a *Agent) interfaceChanged(ev store.Event) {
	x := a.cross
	x.mu.Lock()
	defer x.mu.Unlock()
	var v []byte
	if ev.Type == store.Put {
		v = ev.KV.Value
	}
	if x.noteIntentLocked(ev.KV.Key, v) {
		a.applyLocked()
	}
}

// crossHostChanged follows a change of memberships or networks.
func (a *Agent) crossHostChanged() {
	x := a.cross
	x.mu.Lock()
	defer x.mu.Unlock()
	a.applyLocked()
}

// applyLocked hands the derived keys that changed to the interface
// controller and this host's memberships to the members controller. It
// runs under x.mu so that changes from the three watches reach the
// controllers in the order they were computed.
func (a *Agent) applyLocked() {
	x := a.cross
	nets := x.localNets(a.networkVNI)
	ups, dels := x.diff(x.derive(nets))
	for _, kv := range ups {
		a.ifaces.Upsert(kv)
	}
	for _, k := range dels {
		a.ifaces.Delete(k)
	}
	a.publishLocked(nets)
}

// publishLocked makes the members controller's desired memberships those
// of nets, and queues the published ones no longer wanted.
func (a *Agent) publishLocked(nets map[string]localNet) {
	own := a.cross.ownMembers(nets)
	for k, v := range own {
		if cur, ok := a.members.Get(k); !ok || !bytes.Equal(cur.Value, v) {
			a.members.Upsert(store.KV{Key: k, Value: v})
		} else if pub, ok := a.cross.members[k]; !ok || !bytes.Equal(pub.Value, v) {
			a.members.Enqueue(k) // deleted or changed by someone else
		}
	}
	for _, k := range a.members.Keys() {
		if _, ok := own[k]; !ok {
			a.members.Delete(k)
		}
	}
	for k := range a.cross.members {
		if _, ok := own[k]; !ok && strings.HasPrefix(k, schema.MemberHostPrefix(a.cross.self)) {
			a.members.Enqueue(k)
		}
	}
}
