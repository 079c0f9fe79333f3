package crosshost

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/uspace-io/uspace/agent/controller"
	ifreconcile "github.com/uspace-io/uspace/agent/reconcile/interfaces"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Config is what a host needs to join networks that span hosts.
type Config struct {
	Host string
	// Underlay (an address with prefix length) and Uplink (a Linux
	// interface): the agent's --underlay-ip and --uplink.
	Underlay, Uplink string
	Store            *store.Client
	// Interfaces is the host agent's interface controller: the derived
	// keys (tunnels, uplink) go into its desired cache beside the intents,
	// so one worker owns every change to VPP, a restart re-creates them,
	// and the sweep removes them when orphaned.
	Interfaces *controller.Controller
	Metrics    *controller.Metrics
	Log        *slog.Logger
	// NetworkVNI is the VNI of a network's Network object (0: none).
	NetworkVNI func(network string) uint32
}

// Mesh is what the host agent knows to join networks that span hosts (a
// network with a VNI): which of this host's interface intents are on which
// network, and every host's memberships (members watch). From them it
// derives this host's own memberships, which it publishes, and one VXLAN
// tunnel per (network, peer host with members), plus the uplink, which the
// interface reconcile converges like any interface.
type Mesh struct {
	cfg      Config
	underlay netip.Prefix // the uplink's address; its Addr is the tunnels' source
	// uplinkMTU is the uplink's Linux MTU, read at start; overlayMTU the
	// most a network spanning hosts carries over it (setUplinkMTU).
	uplinkMTU, overlayMTU uint32
	// uplinkMAC is the uplink's Linux MAC, read at start: the uplink in
	// VPP gets it, so a VPP restarted answers on the MAC its peers hold
	// (VPP's neighbour entries do not age out) rather than a random one.
	uplinkMAC net.HardwareAddr
	members   *controller.Controller
	reg       atomic.Pointer[store.Registration]

	mu    sync.Mutex
	local map[string]localIf // interface intent key -> its network
	seen  map[string]store.KV
	// derived are the tunnels and uplink as last handed over; refused the
	// local networks that may not span (network -> why), as last computed.
	derived map[string]store.KV
	refused map[string]string
	synced  chan struct{} // closed by the first members snapshot
	once    sync.Once
}

// localIf is the part of an interface intent that decides membership.
type localIf struct {
	network string
	vni     uint32 // the intent's own; 0: the network's
	bridge  uint32
	created int64 // the intent's creation revision
}

// New returns nil when neither --underlay-ip nor --uplink is set: the
// host's networks stay on it.
func New(cfg Config) (*Mesh, error) {
	if cfg.Underlay == "" && cfg.Uplink == "" {
		return nil, nil
	}
	p, err := netip.ParsePrefix(cfg.Underlay)
	if err != nil || cfg.Uplink == "" {
		return nil, fmt.Errorf("networks spanning hosts need both --underlay-ip, an address with prefix length (e.g. 192.168.77.1/24), and --uplink, the Linux interface that reaches the other hosts: got --underlay-ip %q --uplink %q", cfg.Underlay, cfg.Uplink)
	}
	if err := schema.ValidateIfName("--uplink", cfg.Uplink); err != nil {
		return nil, err
	}
	x := &Mesh{cfg: cfg, underlay: p, local: map[string]localIf{}, seen: map[string]store.KV{},
		derived: map[string]store.KV{}, refused: map[string]string{}, synced: make(chan struct{})}
	x.members = controller.New("memberships", x.reconcileMember, cfg.Metrics, cfg.Log)
	return x, nil
}

// Synced is closed once every host's memberships are known: tunnels are
// desired only from then on, or a worker started earlier would remove the
// ones that survived a restart and make them again.
func (x *Mesh) Synced() <-chan struct{} { return x.synced }

// noteIntentLocked records an interface intent (a nil value: deleted) and
// says whether that changed anything memberships are made of. A value
// that is no HostInterface of its key is not a member: its own reconcile
// reports it.
func (x *Mesh) noteIntentLocked(kv store.KV) bool {
	old, had := x.local[kv.Key]
	var hi *schema.HostInterface
	k, err := schema.ParseKey(kv.Key)
	if err == nil && kv.Value != nil {
		hi, err = schema.DecodeAt[schema.HostInterface](k, kv.Value)
	}
	if kv.Value == nil || err != nil || !JoinsNetwork(hi) {
		delete(x.local, kv.Key)
		return had
	}
	l := localIf{network: hi.Network, vni: hi.VNI, bridge: hi.Bridge, created: kv.CreateRevision}
	x.local[kv.Key] = l
	return !had || old != l
}

// localNet is this host's side of one network that spans hosts.
type localNet struct {
	vni, bridge uint32
	since       int64 // creation revision of its oldest intent here
}

// localNets lists the networks this host has members of and their VNI: an
// intent's own, else the network's (networkVNI). Of intents that disagree
// the lowest VNI and bridge domain win, so every host picks the same.
//
// A VNI joins one network across hosts: two networks of this host with
// one VNI would share every tunnel. Of such networks the one whose oldest
// intent here is oldest keeps it (then the name decides), whatever order
// events came in, so nothing flips back and forth; the others do not span
// hosts and are returned in refused (network -> why), for their interfaces
// to report.
func (x *Mesh) localNets() (nets map[string]localNet, refused map[string]string) {
	nets = map[string]localNet{}
	for _, l := range x.local {
		vni := l.vni
		if vni == 0 {
			vni = x.cfg.NetworkVNI(l.network)
		}
		if vni == 0 {
			continue
		}
		n, ok := nets[l.network]
		if !ok || vni < n.vni || (vni == n.vni && l.bridge < n.bridge) {
			since := l.created
			if ok {
				since = min(since, n.since)
			}
			nets[l.network] = localNet{vni: vni, bridge: l.bridge, since: since}
		} else {
			n.since = min(n.since, l.created)
			nets[l.network] = n
		}
	}
	holder := map[uint32]string{}
	for name, n := range nets {
		h, ok := holder[n.vni]
		if !ok || n.since < nets[h].since || (n.since == nets[h].since && name < h) {
			holder[n.vni] = name
		}
	}
	refused = map[string]string{}
	for name, n := range nets {
		if h := holder[n.vni]; h != name {
			refused[name] = fmt.Sprintf("network %s has VNI %d, which network %s already uses on host %s: one VNI joins one network across hosts; give %s another VNI",
				name, n.vni, h, x.cfg.Host, name)
			delete(nets, name)
		}
	}
	return nets, refused
}

// Refusal says why interfaces of network may not be made (it would share a
// VNI with another network of this host), nil when they may.
func (x *Mesh) Refusal(network string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if why, ok := x.refused[network]; ok {
		return fmt.Errorf("%s", why)
	}
	return nil
}

// ownMembers is what this host must publish: one Member per local network.
func (x *Mesh) ownMembers(nets map[string]localNet) map[string][]byte {
	out := make(map[string][]byte, len(nets))
	for name, n := range nets {
		b, err := schema.Encode(&schema.Member{Host: x.cfg.Host, Network: name, VNI: n.vni, Underlay: x.underlay.Addr().String()})
		if err != nil {
			panic(fmt.Sprintf("encode member of validated names: %v", err)) // names were validated with their intents
		}
		out[schema.MemberKey(x.cfg.Host, name)] = b
	}
	return out
}

// diff returns what changed in derived since the last call, and records
// the new set.
func (x *Mesh) diff(next map[string]store.KV) (upserts []store.KV, deletes []string) {
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

// ReplaceInterfaces installs a snapshot of the interface intents, with the
// tunnels and uplink derived from them in the same replace: a key missing
// for a moment would be queued as deleted.
func (x *Mesh) ReplaceInterfaces(ifs []store.KV) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.local = map[string]localIf{}
	for _, kv := range ifs {
		x.noteIntentLocked(kv)
	}
	nets, refused := x.localNets()
	x.refused = refused
	x.derived = x.derive(nets)
	all := slices.Clone(ifs)
	for _, kv := range x.derived {
		all = append(all, kv)
	}
	x.cfg.Interfaces.Replace(all, ifreconcile.SweepKey)
	x.publishLocked(nets)
}

// InterfaceChanged follows a put or delete of one interface intent.
func (x *Mesh) InterfaceChanged(ev store.Event) {
	x.mu.Lock()
	defer x.mu.Unlock()
	kv := store.KV{Key: ev.KV.Key, CreateRevision: ev.KV.CreateRevision}
	if ev.Type == store.Put {
		kv.Value = ev.KV.Value
	}
	if x.noteIntentLocked(kv) {
		x.applyLocked()
	}
}

// NetworksChanged follows a change of the networks' objects.
func (x *Mesh) NetworksChanged() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.applyLocked()
}

// applyLocked hands the derived keys that changed to the interface
// controller, this host's memberships to the members controller, and
// queues the intents of the networks whose refusal changed. It runs under
// x.mu so that changes from the three watches reach the controllers in
// the order they were computed.
func (x *Mesh) applyLocked() {
	nets, refused := x.localNets()
	for key, l := range x.local {
		if refused[l.network] != x.refused[l.network] {
			x.cfg.Interfaces.Enqueue(key)
		}
	}
	x.refused = refused
	ups, dels := x.diff(x.derive(nets))
	for _, kv := range ups {
		x.cfg.Interfaces.Upsert(kv)
	}
	for _, k := range dels {
		x.cfg.Interfaces.Delete(k)
	}
	x.publishLocked(nets)
}
