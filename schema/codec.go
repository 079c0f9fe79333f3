package schema

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// Object is any value stored under Root.
type Object interface {
	kind() string
	setTypeMeta()
	meta() *TypeMeta
	Validate() error
}

func (m *TypeMeta) meta() *TypeMeta { return m }

func (*HostInterface) kind() string      { return KindHostInterface }
func (*ContainerInterface) kind() string { return KindContainerInterface }
func (*ContainerMeta) kind() string      { return KindContainerMeta }
func (*Network) kind() string            { return KindNetwork }
func (*Volume) kind() string             { return KindVolume }
func (*Agent) kind() string              { return KindAgent }
func (*InterfaceStatus) kind() string    { return KindInterfaceStatus }
func (*VolumeStatus) kind() string       { return KindVolumeStatus }
func (*Member) kind() string             { return KindMember }
func (*Tunnel) kind() string             { return KindTunnel }
func (*Uplink) kind() string             { return KindUplink }

func (m *TypeMeta) set(kind string) { m.APIVersion, m.Kind = APIVersion, kind }

func (o *HostInterface) setTypeMeta()      { o.set(o.kind()) }
func (o *ContainerInterface) setTypeMeta() { o.set(o.kind()) }
func (o *ContainerMeta) setTypeMeta()      { o.set(o.kind()) }
func (o *Network) setTypeMeta()            { o.set(o.kind()) }
func (o *Volume) setTypeMeta()             { o.set(o.kind()) }
func (o *Agent) setTypeMeta()              { o.set(o.kind()) }
func (o *InterfaceStatus) setTypeMeta()    { o.set(o.kind()) }
func (o *VolumeStatus) setTypeMeta()       { o.set(o.kind()) }
func (o *Member) setTypeMeta()             { o.set(o.kind()) }
func (o *Tunnel) setTypeMeta()             { o.set(o.kind()) }
func (o *Uplink) setTypeMeta()             { o.set(o.kind()) }

// kinds makes an empty value of each kind Decode reads.
var kinds = map[string]func() Object{
	KindHostInterface:      func() Object { return new(HostInterface) },
	KindContainerInterface: func() Object { return new(ContainerInterface) },
	KindContainerMeta:      func() Object { return new(ContainerMeta) },
	KindNetwork:            func() Object { return new(Network) },
	KindVolume:             func() Object { return new(Volume) },
	KindAgent:              func() Object { return new(Agent) },
	KindInterfaceStatus:    func() Object { return new(InterfaceStatus) },
	KindVolumeStatus:       func() Object { return new(VolumeStatus) },
	KindMember:             func() Object { return new(Member) },
	KindTunnel:             func() Object { return new(Tunnel) },
	KindUplink:             func() Object { return new(Uplink) },
}

// Encode validates o, stamps apiVersion and kind, and marshals it.
func Encode(o Object) ([]byte, error) {
	o.setTypeMeta()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("encode %s: %w", o.kind(), err)
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", o.kind(), err)
	}
	return b, nil
}

// Equal reports whether a decoded value holds the same as o, whose type
// meta it fills in as Encode does (and changes nothing else of): equal
// values encode equally, so neither need be encoded to compare them.
func Equal(decoded, o Object) bool {
	o.setTypeMeta()
	return reflect.DeepEqual(decoded, o)
}

// encodedPrefix starts every value Encode writes: its type meta first.
const encodedPrefix = `{"apiVersion":"` + APIVersion + `","kind":"`

// Decode reads a value of any kind and validates it. A value as Encode
// wrote it names its kind up front and is parsed once (a restart decodes
// every status); any other is read for its type meta first.
func Decode(data []byte) (Object, error) {
	if rest, ok := bytes.CutPrefix(data, []byte(encodedPrefix)); ok {
		if kind, _, ok := bytes.Cut(rest, []byte(`"`)); ok {
			if newObj, ok := kinds[string(kind)]; ok {
				o := newObj()
				// The value may still say otherwise further on (a key
				// repeated): then it is read the long way, as any other.
				if err := json.Unmarshal(data, o); err == nil && *o.meta() == (TypeMeta{APIVersion: APIVersion, Kind: string(kind)}) {
					if err := o.Validate(); err != nil {
						return nil, fmt.Errorf("decode %s: %w", kind, err)
					}
					return o, nil
				}
			}
		}
	}
	var tm TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return nil, fmt.Errorf("decode value: %w", err)
	}
	if tm.APIVersion != APIVersion {
		return nil, fmt.Errorf("decode value: apiVersion %q, want %q", tm.APIVersion, APIVersion)
	}
	newObj, ok := kinds[tm.Kind]
	if !ok {
		return nil, fmt.Errorf("decode value: unknown kind %q", tm.Kind)
	}
	o := newObj()
	if err := json.Unmarshal(data, o); err != nil {
		return nil, fmt.Errorf("decode %s: %w", tm.Kind, err)
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("decode %s: %w", tm.Kind, err)
	}
	return o, nil
}

// DecodeAs decodes a value that must be of type T. It parses the value
// once (agents decode every key of a resync), then checks apiVersion and
// kind as Decode does.
func DecodeAs[T any, PT interface {
	*T
	Object
}](data []byte) (*T, error) {
	var o PT = new(T)
	if err := json.Unmarshal(data, o); err != nil {
		// Not T's shape: say what the value is, as Decode would.
		other, derr := Decode(data)
		if derr != nil {
			return nil, derr
		}
		return nil, fmt.Errorf("decode value: kind %s, want %s", other.kind(), o.kind())
	}
	tm := o.meta()
	if tm.APIVersion != APIVersion {
		return nil, fmt.Errorf("decode value: apiVersion %q, want %q", tm.APIVersion, APIVersion)
	}
	if tm.Kind != o.kind() {
		if _, err := Decode(data); err != nil {
			return nil, err // e.g. an unknown kind
		}
		return nil, fmt.Errorf("decode value: kind %s, want %s", tm.Kind, o.kind())
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("decode %s: %w", tm.Kind, err)
	}
	return (*T)(o), nil
}

// valueKind is the kind of value key k holds; "" for none.
func valueKind(k Key) string {
	if k.Status {
		switch k.Kind {
		case KindVolumeKey:
			return KindVolumeStatus
		case KindInterfaceKey, KindContainerInterfaceKey, KindTunnelKey, KindUplinkKey:
			return KindInterfaceStatus
		}
		return ""
	}
	return intentKinds[k.Kind]
}

// intentKinds is the kind of value each kind of key that is not a status
// holds.
var intentKinds = map[KeyKind]string{
	KindAgentKey:              KindAgent,
	KindInterfaceKey:          KindHostInterface,
	KindVolumeKey:             KindVolume,
	KindContainerMetaKey:      KindContainerMeta,
	KindContainerInterfaceKey: KindContainerInterface,
	KindNetworkKey:            KindNetwork,
	KindMemberKey:             KindMember,
	KindTunnelKey:             KindTunnel,
	KindUplinkKey:             KindUplink,
}

// DecodeAt decodes the value stored under key k. Where a value is decides
// what it may be, not what it says it is: it must be the kind k holds (T,
// or the decode fails whatever the value), and every name it repeats from
// its key (host, container, interface, network, volume, peer) must be
// k's.
func DecodeAt[T any, PT interface {
	*T
	Object
}](k Key, data []byte) (*T, error) {
	var want PT = new(T)
	if held := valueKind(k); held != want.kind() {
		return nil, fmt.Errorf("decode %s: it holds %s values, not %s", k, cmp.Or(held, "no"), want.kind())
	}
	o, err := DecodeAs[T, PT](data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", k, err)
	}
	if err := keyedBy(PT(o), k); err != nil {
		return nil, fmt.Errorf("decode %s: %w", k, err)
	}
	return o, nil
}

// keyedBy checks that the names o repeats from its key are k's.
func keyedBy(o Object, k Key) error {
	type name struct{ field, got, want string }
	var names []name
	switch o := o.(type) {
	case *HostInterface:
		names = []name{{"host", o.Host, k.Host}, {"container", o.Container, k.Container}, {"name", o.Name, k.Interface}}
	case *ContainerInterface:
		names = []name{{"host", o.Host, k.Host}, {"container", o.Container, k.Container}, {"name", o.Name, k.Interface}}
	case *ContainerMeta:
		names = []name{{"host", o.Host, k.Host}, {"container", o.Container, k.Container}}
	case *Network:
		names = []name{{"name", o.Name, k.Network}}
	case *Volume:
		names = []name{{"host", o.Host, k.Host}, {"name", o.Name, k.Volume}}
	case *Agent:
		names = []name{{"host", o.Host, k.Host}}
	case *Uplink:
		names = []name{{"host", o.Host, k.Host}}
	case *Member:
		names = []name{{"host", o.Host, k.Host}, {"network", o.Network, k.Network}}
	case *Tunnel:
		names = []name{{"host", o.Host, k.Host}, {"network", o.Network, k.Network}, {"peer", o.Peer, k.Peer}}
	}
	var errs []error
	for _, n := range names {
		if n.got != n.want {
			errs = append(errs, fieldErr(n.field, n.got, "must be %q, as in its key", n.want))
		}
	}
	return errors.Join(errs...)
}
