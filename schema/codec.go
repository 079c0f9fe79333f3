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

// Decode reads a value of any kind and validates it.
func Decode(data []byte) (Object, error) {
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
