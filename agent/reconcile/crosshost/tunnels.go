package crosshost

import (
	"errors"
	"fmt"
	"net/netip"

	ifreconcile "github.com/uspace-io/uspace/agent/reconcile/interfaces"
	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// peer is one member key of another host, as far as it could be read.
type peer struct {
	key schema.Key
	kv  store.KV
	m   *schema.Member
	err error // why no tunnel may go there
}

// derive computes the tunnels and the uplink this host wants, as KVs of
// the interface controller. A tunnel's revision is its peer member's, so
// its status says which membership it reflects. A peer member that cannot
// be tunnelled to gets a tunnel key all the same, carrying why not
// (Tunnel.Error), so that its status says it and a tunnel made before
// goes.
func (x *Mesh) derive(nets map[string]localNet) map[string]store.KV {
	out := map[string]store.KV{}
	up, err := schema.Encode(&schema.Uplink{Host: x.cfg.Host, HostIfName: x.cfg.Uplink, Address: x.underlay.String(), MTU: x.uplinkMTU})
	if err != nil {
		panic(fmt.Sprintf("encode uplink of validated flags: %v", err))
	}
	out[schema.UplinkKey(x.cfg.Host)] = store.KV{Key: schema.UplinkKey(x.cfg.Host), Value: up}
	peers := x.peers()
	for _, p := range peers {
		n, ok := nets[p.key.Network]
		if !ok {
			continue
		}
		t := &schema.Tunnel{Host: x.cfg.Host, Network: p.key.Network, Peer: p.key.Host, VNI: n.vni,
			Src: x.underlay.Addr().String(), Bridge: n.bridge}
		switch {
		case p.err != nil:
			t.Error = p.err.Error()
		case p.m.VNI != n.vni:
			t.Error = fmt.Sprintf("host %s has network %s with VNI %d, this host with VNI %d: no tunnel until they agree", p.key.Host, p.key.Network, p.m.VNI, n.vni)
		default:
			t.Dst = p.m.Underlay
		}
		b, err := schema.Encode(t)
		if err != nil {
			panic(fmt.Sprintf("encode tunnel of validated names and addresses: %v", err))
		}
		tk := schema.TunnelKey(x.cfg.Host, p.key.Network, p.key.Host)
		out[tk] = store.KV{Key: tk, Value: b, ModRevision: p.kv.ModRevision}
	}
	return out
}

// peers reads the other hosts' member keys. A member must be one of its
// key (host and network), announce an underlay address the uplink reaches
// (in this host's underlay subnet, not this host's own), and be the only
// host announcing it: of hosts that announce one address, the one whose
// oldest member is oldest keeps it (then the name decides), so every host
// picks the same and nothing flips back and forth; the others are
// refused.
func (x *Mesh) peers() []peer {
	var out []peer
	type holder struct {
		host  string
		since int64
	}
	holders := map[netip.Addr]holder{}
	for key, kv := range x.seen {
		k, err := schema.ParseKey(key)
		if err != nil || k.Kind != schema.KindMemberKey || k.Host == x.cfg.Host {
			continue
		}
		p := peer{key: k, kv: kv}
		p.m, p.err = schema.DecodeAt[schema.Member](k, kv.Value)
		if p.err == nil {
			p.err = x.reachable(k.Host, p.m.Underlay)
		}
		if p.err == nil {
			a := netip.MustParseAddr(p.m.Underlay) // validated by DecodeAt
			h, ok := holders[a]
			if !ok || kv.CreateRevision < h.since || (kv.CreateRevision == h.since && k.Host < h.host) {
				holders[a] = holder{host: k.Host, since: kv.CreateRevision}
			}
		}
		out = append(out, p)
	}
	for i, p := range out {
		if p.err != nil {
			continue
		}
		if h := holders[netip.MustParseAddr(p.m.Underlay)]; h.host != p.key.Host {
			out[i].err = fmt.Errorf("host %s announces underlay %s, which host %s announced first: no tunnel to a duplicate address", p.key.Host, p.m.Underlay, h.host)
		}
	}
	return out
}

// reachable checks a peer's underlay address: the uplink reaches the
// hosts of this host's underlay subnet, by ARP, and no other.
func (x *Mesh) reachable(host, underlay string) error {
	a, err := netip.ParseAddr(underlay)
	switch {
	case err != nil:
		return fmt.Errorf("host %s announces underlay %q: %w", host, underlay, err)
	case a == x.underlay.Addr():
		return fmt.Errorf("host %s announces underlay %s, which is this host's own (%s)", host, a, x.cfg.Host)
	case !x.underlay.Masked().Contains(a):
		return fmt.Errorf("host %s announces underlay %s, outside this host's underlay subnet %s, the only one its uplink reaches", host, a, x.underlay.Masked())
	}
	return nil
}

// Spec is the interface reconcile's spec of a tunnel or the uplink (keys
// this package derives, of kinds tunnel and uplink). A tunnel that may not
// be made is Withdrawn: the one made before must not keep forwarding.
func (x *Mesh) Spec(k schema.Key, owner string, value []byte) (vppstate.Spec, error) {
	switch k.Kind {
	case schema.KindUplinkKey:
		u, err := schema.DecodeAt[schema.Uplink](k, value)
		if err != nil {
			return vppstate.Spec{}, err
		}
		spec := vppstate.Spec{Owner: owner, Type: schema.IfTypeAFPacket, HostIf: u.HostIfName, Addresses: []string{u.Address}, MTU: u.MTU}
		if len(x.uplinkMAC) == 6 {
			spec.MAC = x.uplinkMAC.String()
		}
		return spec, nil
	case schema.KindTunnelKey:
		t, err := schema.DecodeAt[schema.Tunnel](k, value)
		if err != nil {
			return vppstate.Spec{}, err
		}
		if t.Error != "" {
			return vppstate.Spec{}, ifreconcile.Withdrawn(errors.New(t.Error))
		}
		src, serr := netip.ParseAddr(t.Src)
		dst, derr := netip.ParseAddr(t.Dst)
		if serr != nil || derr != nil {
			return vppstate.Spec{}, fmt.Errorf("tunnel to %s: %w", t.Peer, errors.Join(serr, derr))
		}
		return vppstate.Spec{Owner: owner, Type: schema.IfTypeVXLAN, Tunnel: &vppstate.Tunnel{Src: src, Dst: dst, VNI: t.VNI},
			Bridge: t.Bridge, SplitHorizon: tunnelSHG}, nil
	}
	return vppstate.Spec{}, fmt.Errorf("%s is no key of a tunnel or an uplink", k)
}

// tunnelSHG is the split-horizon group of every tunnel: a frame from one
// peer host is never flooded to another, each host floods to all of them
// itself.
const tunnelSHG = 1
