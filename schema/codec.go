package schema

import (
	"encoding/json"
	"fmt"
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

// Decode reads a value of any kind and validates it.
func Decode(data []byte) (Object, error) {
	var tm TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return nil, fmt.Errorf("decode value: %w", err)
	}
	if tm.APIVersion != APIVersion {
		return nil, fmt.Errorf("decode value: apiVersion %q, want %q", tm.APIVersion, APIVersion)
	}
	var o Object
	switch tm.Kind {
	case KindHostInterface:
		o = new(HostInterface)
	case KindContainerInterface:
		o = new(ContainerInterface)
	case KindContainerMeta:
		o = new(ContainerMeta)
	case KindNetwork:
		o = new(Network)
	case KindVolume:
		o = new(Volume)
	case KindAgent:
		o = new(Agent)
	case KindInterfaceStatus:
		o = new(InterfaceStatus)
	case KindVolumeStatus:
		o = new(VolumeStatus)
	case KindMember:
		o = new(Member)
	case KindTunnel:
		o = new(Tunnel)
	case KindUplink:
		o = new(Uplink)
	default:
		return nil, fmt.Errorf("decode value: unknown kind %q", tm.Kind)
	}
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
