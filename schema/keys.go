package schema

import (
	"fmt"
	"strings"
)

// Root is the prefix of every key of schema v1; a later schema lives beside
// it under its own version segment during an upgrade.
const Root = ProjectPrefix + "v1/"

// ProjectPrefix holds every schema version: what the admin identity may
// touch, so that a later version living beside v1 is covered too.
const ProjectPrefix = "/uspace/"

const (
	hostsSeg    = "hosts"
	networksSeg = "networks"
	statusSeg   = "status"
	membersSeg  = "members"
)

// KeyKind names what a key holds.
type KeyKind string

const (
	KindAgentKey              KeyKind = "agent"
	KindInterfaceKey          KeyKind = "interface"
	KindVolumeKey             KeyKind = "volume"
	KindContainerMetaKey      KeyKind = "containerMeta"
	KindContainerInterfaceKey KeyKind = "containerInterface"
	KindNetworkKey            KeyKind = "network"
	// KindMemberKey is members/<host>/<network>: a host's membership of
	// a network that spans hosts, readable by every host.
	KindMemberKey KeyKind = "member"
	// KindTunnelKey (hosts/<host>/tunnels/<network>/<peer>) and
	// KindUplinkKey (hosts/<host>/uplink) name what a host agent derives
	// for itself; only their statuses are stored.
	KindTunnelKey KeyKind = "tunnel"
	KindUplinkKey KeyKind = "uplink"
)

// Key is a parsed uspace key. Status is true for keys under status/, which
// mirror the intent key of the same kind and names.
type Key struct {
	Kind      KeyKind
	Status    bool
	Host      string
	Container string
	Interface string
	Volume    string
	Network   string
	Peer      string
}

// String builds the key. It is the only place that joins key segments.
func (k Key) String() string {
	var segs []string
	switch k.Kind {
	case KindNetworkKey:
		segs = []string{networksSeg, k.Network}
	case KindMemberKey:
		segs = []string{membersSeg, k.Host, k.Network}
	case KindTunnelKey:
		segs = []string{hostsSeg, k.Host, "tunnels", k.Network, k.Peer}
	case KindUplinkKey:
		segs = []string{hostsSeg, k.Host, "uplink"}
	case KindAgentKey:
		segs = []string{hostsSeg, k.Host, "agent"}
	case KindInterfaceKey:
		segs = []string{hostsSeg, k.Host, "interfaces", k.Container, k.Interface}
	case KindVolumeKey:
		segs = []string{hostsSeg, k.Host, "volumes", k.Volume}
	case KindContainerMetaKey:
		segs = []string{hostsSeg, k.Host, "containers", k.Container, "meta"}
	case KindContainerInterfaceKey:
		segs = []string{hostsSeg, k.Host, "containers", k.Container, "interfaces", k.Interface}
	default:
		panic(fmt.Sprintf("schema: key of unknown kind %q", k.Kind))
	}
	if k.Status {
		segs = append([]string{statusSeg}, segs...)
	}
	return Root + strings.Join(segs, "/")
}

// StatusOf returns the status key that mirrors an intent key.
func (k Key) StatusOf() Key { k.Status = true; return k }

// IntentOf returns the intent key a status key mirrors.
func (k Key) IntentOf() Key { k.Status = false; return k }

func AgentKey(host string) string { return Key{Kind: KindAgentKey, Host: host}.String() }

func InterfaceKey(host, container, ifname string) string {
	return Key{Kind: KindInterfaceKey, Host: host, Container: container, Interface: ifname}.String()
}

func VolumeKey(host, volume string) string {
	return Key{Kind: KindVolumeKey, Host: host, Volume: volume}.String()
}

func ContainerMetaKey(host, container string) string {
	return Key{Kind: KindContainerMetaKey, Host: host, Container: container}.String()
}

func ContainerInterfaceKey(host, container, ifname string) string {
	return Key{Kind: KindContainerInterfaceKey, Host: host, Container: container, Interface: ifname}.String()
}

func NetworkKey(network string) string { return Key{Kind: KindNetworkKey, Network: network}.String() }

func MemberKey(host, network string) string {
	return Key{Kind: KindMemberKey, Host: host, Network: network}.String()
}

func TunnelKey(host, network, peer string) string {
	return Key{Kind: KindTunnelKey, Host: host, Network: network, Peer: peer}.String()
}

func UplinkKey(host string) string { return Key{Kind: KindUplinkKey, Host: host}.String() }

// StatusKey returns the status key mirroring the intent key of the same
// kind and names.
func StatusKey(k Key) string { return k.StatusOf().String() }

// Prefixes that watchers and credentials are scoped to. Each ends in "/" so
// that host "a" never matches host "ab".

func HostPrefix(host string) string { return Root + hostsSeg + "/" + host + "/" }

func HostsPrefix() string { return Root + hostsSeg + "/" }

func InterfacesPrefix(host string) string { return HostPrefix(host) + "interfaces/" }

func ContainerInterfacesPrefix(host, container string) string {
	return InterfacesPrefix(host) + container + "/"
}

func VolumesPrefix(host string) string { return HostPrefix(host) + "volumes/" }

func ContainersPrefix(host string) string { return HostPrefix(host) + "containers/" }

func ContainerPrefix(host, container string) string { return ContainersPrefix(host) + container + "/" }

func NetworksPrefix() string { return Root + networksSeg + "/" }

// MembersPrefix holds every host's memberships; MemberHostPrefix one
// host's, the only part of it that host may write.
func MembersPrefix() string { return Root + membersSeg + "/" }

func MemberHostPrefix(host string) string { return MembersPrefix() + host + "/" }

func StatusPrefix() string { return Root + statusSeg + "/" }

func StatusHostPrefix(host string) string { return StatusPrefix() + hostsSeg + "/" + host + "/" }

func StatusContainersPrefix(host string) string { return StatusHostPrefix(host) + "containers/" }

func StatusContainerPrefix(host, container string) string {
	return StatusContainersPrefix(host) + container + "/"
}

// ParseKey parses any key of the v1 layout and validates every name in it.
func ParseKey(key string) (Key, error) {
	rest, ok := strings.CutPrefix(key, Root)
	if !ok {
		return Key{}, fmt.Errorf("parse key %q: not under %s", key, Root)
	}
	segs := strings.Split(rest, "/")
	var k Key
	if segs[0] == statusSeg {
		k.Status = true
		segs = segs[1:]
	}
	bad := func(why string) (Key, error) { return Key{}, fmt.Errorf("parse key %q: %s", key, why) }
	if len(segs) == 0 {
		return bad("empty")
	}
	switch {
	case segs[0] == networksSeg && len(segs) == 2:
		k.Kind, k.Network = KindNetworkKey, segs[1]
	case segs[0] == membersSeg && len(segs) == 3 && !k.Status:
		k.Kind, k.Host, k.Network = KindMemberKey, segs[1], segs[2]
	case segs[0] == hostsSeg && len(segs) >= 3:
		k.Host = segs[1]
		switch tail := segs[2:]; {
		case len(tail) == 1 && tail[0] == "agent":
			k.Kind = KindAgentKey
		case len(tail) == 1 && tail[0] == "uplink":
			k.Kind = KindUplinkKey
		case len(tail) == 3 && tail[0] == "tunnels":
			k.Kind, k.Network, k.Peer = KindTunnelKey, tail[1], tail[2]
		case len(tail) == 3 && tail[0] == "interfaces":
			k.Kind, k.Container, k.Interface = KindInterfaceKey, tail[1], tail[2]
		case len(tail) == 2 && tail[0] == "volumes":
			k.Kind, k.Volume = KindVolumeKey, tail[1]
		case len(tail) == 3 && tail[0] == "containers" && tail[2] == "meta":
			k.Kind, k.Container = KindContainerMetaKey, tail[1]
		case len(tail) == 4 && tail[0] == "containers" && tail[2] == "interfaces":
			k.Kind, k.Container, k.Interface = KindContainerInterfaceKey, tail[1], tail[3]
		default:
			return bad("unknown layout under hosts/" + segs[1])
		}
	default:
		return bad("unknown layout")
	}
	if err := k.validate(); err != nil {
		return Key{}, fmt.Errorf("parse key %q: %w", key, err)
	}
	return k, nil
}

func (k Key) validate() error {
	var checks []error
	switch k.Kind {
	case KindNetworkKey:
		checks = append(checks, ValidateNetworkName("network", k.Network))
	default:
		checks = append(checks, ValidateHost("host", k.Host))
	}
	if k.Container != "" || k.Kind == KindInterfaceKey || k.Kind == KindContainerMetaKey || k.Kind == KindContainerInterfaceKey {
		checks = append(checks, ValidateContainerID("container", k.Container))
	}
	if k.Kind == KindInterfaceKey || k.Kind == KindContainerInterfaceKey {
		checks = append(checks, ValidateIfName("interface", k.Interface))
	}
	if k.Kind == KindVolumeKey {
		checks = append(checks, ValidateVolumeName("volume", k.Volume))
	}
	if k.Kind == KindMemberKey || k.Kind == KindTunnelKey {
		checks = append(checks, ValidateNetworkName("network", k.Network))
	}
	if k.Kind == KindTunnelKey {
		checks = append(checks, ValidateHost("peer", k.Peer))
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}
