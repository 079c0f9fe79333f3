package schema

import "time"

// APIVersion is carried by every value so a reader can tell schemas apart.
const APIVersion = "uspace/v1"

// Kinds of values.
const (
	KindHostInterface      = "HostInterface"
	KindContainerInterface = "ContainerInterface"
	KindContainerMeta      = "ContainerMeta"
	KindNetwork            = "Network"
	KindVolume             = "Volume"
	KindAgent              = "Agent"
	KindInterfaceStatus    = "InterfaceStatus"
	KindVolumeStatus       = "VolumeStatus"
	KindMember             = "Member"
	KindTunnel             = "Tunnel"
	KindUplink             = "Uplink"
)

type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

type IfType string

const (
	IfTypeMemif     IfType = "memif"
	IfTypeVhostUser IfType = "vhostuser"
	// The host agent's own interfaces for networks that span hosts: never
	// in an intent a writer makes.
	IfTypeVXLAN    IfType = "vxlan"
	IfTypeAFPacket IfType = "afpacket"
)

type NetType string

const (
	NetTypeBridge    NetType = "bridge"
	NetTypeInterface NetType = "interface"
)

type MemifRole string

const (
	MemifMaster MemifRole = "master"
	MemifSlave  MemifRole = "slave"
)

// Opposite is the role the peer must take for the pair to connect.
func (r MemifRole) Opposite() MemifRole { return other(r, MemifMaster, MemifSlave) }

// other is b for a, and a for anything else.
func other[T comparable](v, a, b T) T {
	if v == a {
		return b
	}
	return a
}

type MemifMode string

const (
	MemifEthernet   MemifMode = "ethernet"
	MemifIP         MemifMode = "ip"
	MemifInjectPunt MemifMode = "inject-punt"
)

type VhostMode string

const (
	VhostServer VhostMode = "server"
	VhostClient VhostMode = "client"
)

// Opposite is the mode the peer must take for the pair to connect.
func (m VhostMode) Opposite() VhostMode { return other(m, VhostServer, VhostClient) }

// MemifSpec is one end of a memif pair. SocketPath is the path as the VPP
// that opens it sees it: the host path in a HostInterface, the container's
// path in a ContainerInterface; or "@<name>", an abstract unix socket in the
// container's network namespace, where only that namespace's processes
// reach it (no shared directory, no file). Netns, set only with an
// abstract socket and only on the host side, is that namespace's path: the
// host VPP opens the socket there.
type MemifSpec struct {
	Role       MemifRole `json:"role"`
	Mode       MemifMode `json:"mode"`
	SocketPath string    `json:"socketPath"`
	Netns      string    `json:"netns,omitempty"`
	ID         uint32    `json:"id"`
	RingSize   uint32    `json:"ringSize,omitempty"`
	BufferSize uint16    `json:"bufferSize,omitempty"`
}

// VhostSpec is one end of a vhost-user pair.
type VhostSpec struct {
	Mode       VhostMode `json:"mode"`
	SocketPath string    `json:"socketPath"`
}

// HostInterface is the host side of an interface: what the host agent
// creates in the host's VPP.
type HostInterface struct {
	TypeMeta
	Host      string  `json:"host"`
	Container string  `json:"container"`
	Name      string  `json:"name"`
	Type      IfType  `json:"type"`
	NetType   NetType `json:"netType"`
	Network   string  `json:"network,omitempty"`
	Bridge    uint32  `json:"bridgeDomain,omitempty"`
	// VNI makes the network span hosts: its bridge domain is joined to
	// every other host with members of the network by a VXLAN tunnel of
	// this VNI. 0: the network's own VNI (Network.VNI), if any.
	VNI   uint32     `json:"vni,omitempty"`
	Memif *MemifSpec `json:"memif,omitempty"`
	Vhost *VhostSpec `json:"vhost,omitempty"`
	MTU   uint32     `json:"mtu,omitempty"`
	MAC   string     `json:"mac,omitempty"`
}

type IPAddress struct {
	Address string `json:"address"`
	Gateway string `json:"gateway,omitempty"`
}

type Route struct {
	Dst string `json:"dst"`
	GW  string `json:"gw,omitempty"`
}

// ContainerInterface is the container side of the same interface: what the
// container agent creates in the container's VPP.
type ContainerInterface struct {
	TypeMeta
	Host      string      `json:"host"`
	Container string      `json:"container"`
	Name      string      `json:"name"`
	Type      IfType      `json:"type"`
	Memif     *MemifSpec  `json:"memif,omitempty"`
	Vhost     *VhostSpec  `json:"vhost,omitempty"`
	MTU       uint32      `json:"mtu,omitempty"`
	MAC       string      `json:"mac,omitempty"`
	IPs       []IPAddress `json:"ips,omitempty"`
	Routes    []Route     `json:"routes,omitempty"`
}

// ContainerMeta records who a container is and which interfaces it owns, so
// DEL, GC and identity discovery need nothing but etcd.
type ContainerMeta struct {
	TypeMeta
	Host      string `json:"host"`
	Container string `json:"container"`
	Netns     string `json:"netns,omitempty"`
	// Network is the network of the container's first attachment, kept
	// for readers of the first v1 values; Networks has every one.
	Network string `json:"network,omitempty"`
	// Networks maps each interface of Interfaces to the network (CNI
	// config name) it was added from: a container attached to several
	// networks (Multus) has one entry per attachment.
	Networks     map[string]string `json:"networks,omitempty"`
	PodNamespace string            `json:"podNamespace,omitempty"`
	PodName      string            `json:"podName,omitempty"`
	PodUID       string            `json:"podUID,omitempty"`
	Interfaces   []string          `json:"interfaces"`
	CreatedAt    time.Time         `json:"createdAt"`
}

// Network is an L2 network. It is optional: without it a bridge domain is
// created with VPP's usual defaults.
type Network struct {
	TypeMeta
	Name   string `json:"name"`
	Bridge uint32 `json:"bridgeDomain"`
	MTU    uint32 `json:"mtu,omitempty"`
	// VNI makes the network span hosts (see HostInterface.VNI).
	VNI uint32 `json:"vni,omitempty"`
}

// Member says that a host has interfaces on a network that spans hosts,
// and where VXLAN tunnels to it end. A host agent publishes one per such
// network under its own members prefix, bound to its registration lease:
// a host that dies leaves every network when its lease expires.
type Member struct {
	TypeMeta
	Host    string `json:"host"`
	Network string `json:"network"`
	VNI     uint32 `json:"vni"`
	// Underlay is the host's tunnel end point (an IP address).
	Underlay string `json:"underlay"`
}

// Tunnel is what a host agent derives from this host's and a peer's
// Member of one network: a VXLAN tunnel to the peer in the network's
// bridge domain. It is never stored; its status is, under the tunnel key.
type Tunnel struct {
	TypeMeta
	Host    string `json:"host"`
	Network string `json:"network"`
	Peer    string `json:"peer"`
	VNI     uint32 `json:"vni"`
	Src     string `json:"src"`
	Dst     string `json:"dst"`
	Bridge  uint32 `json:"bridgeDomain"`
	// Error, when set, is why no tunnel can be made (the peer's VNI
	// differs): reported in the tunnel's status.
	Error string `json:"error,omitempty"`
}

// Uplink is a host agent's underlay interface, derived from its flags: an
// af_packet interface on a Linux interface, carrying the underlay address.
// It is never stored; its status is, under the uplink key.
type Uplink struct {
	TypeMeta
	Host       string `json:"host"`
	HostIfName string `json:"hostIfName"`
	Address    string `json:"address"` // CIDR
	// MTU is the Linux interface's, which the uplink in VPP must not
	// exceed: VPP 25.02's af_packet loses a frame over it (and, once the
	// kernel refused one, may send nothing more).
	MTU uint32 `json:"mtu"`
}

type VolumeType string

const (
	VolumeBlk  VolumeType = "blk"
	VolumeSCSI VolumeType = "scsi"
)

// Major is the device major Kata looks up for this type.
func (t VolumeType) Major() uint32 {
	if t == VolumeSCSI {
		return 242
	}
	return 241
}

// MaxMinor is the highest minor handed out per major and root.
const MaxMinor = 255

// MallocSpec asks the host agent to create a malloc bdev for the device.
type MallocSpec struct {
	SizeBytes uint64 `json:"sizeBytes"`
	BlockSize uint32 `json:"blockSize"`
}

// Volume is a vhost-user block or scsi device: SPDK controller, its bdev,
// and the device node Kata resolves. Device == socket name == controller.
type Volume struct {
	TypeMeta
	Host   string     `json:"host"`
	Name   string     `json:"name"`
	Type   VolumeType `json:"type"`
	Device string     `json:"device"`
	Root   string     `json:"root"`
	// Bdev is the SPDK bdev behind the controller. With Malloc the host
	// agent creates it; without, it must exist, and "" means whatever bdev
	// (blk) or targets (scsi) an existing controller Device serves: the
	// volume adopts that controller.
	Bdev   string      `json:"bdev,omitempty"`
	Malloc *MallocSpec `json:"malloc,omitempty"`
	Minor  uint32      `json:"minor"`
	// Mounts are the mount IDs Docker was told succeeded; Remove refuses
	// while there are any.
	Mounts []string `json:"mounts,omitempty"`
	// Mounting are mount IDs whose Mount has not answered success (yet):
	// Docker never sends Unmount after a failed Mount, so these never
	// block Remove, whatever became of the Mount that recorded them.
	Mounting  []string  `json:"mounting,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// Agent is a host agent's lease-bound registration.
type Agent struct {
	TypeMeta
	Host        string    `json:"host"`
	Version     string    `json:"version"`
	VPPVersion  string    `json:"vppVersion,omitempty"`
	SPDKVersion string    `json:"spdkVersion,omitempty"`
	StartedAt   time.Time `json:"startedAt"`
}

// InterfaceStatus is what an agent applied for an interface intent, host or
// container side. InterfaceName is the dataplane's name of the interface
// (VPP's "memif1/0", "VirtualEthernet0/0/0") as the agent last saw it.
type InterfaceStatus struct {
	TypeMeta
	ObservedRevision int64  `json:"observedRevision"`
	Ready            bool   `json:"ready"`
	Error            string `json:"error,omitempty"`
	// Retrying marks Error as transient: the dataplane is unreachable or
	// restarting and the agent keeps retrying on its own, so a writer
	// waiting for this status keeps waiting until its own deadline and then
	// answers "try again later". An Error without Retrying is terminal for
	// this revision of the intent (a value the dataplane refuses): the
	// writer fails at once with it.
	Retrying      bool   `json:"retrying,omitempty"`
	SwIfIndex     uint32 `json:"swIfIndex,omitempty"`
	SocketPath    string `json:"socketPath,omitempty"`
	InterfaceName string `json:"interfaceName,omitempty"`
	Bridge        uint32 `json:"bridgeDomain,omitempty"`
	// MTU is the L3 MTU the agent set on the interface (0: it left VPP's
	// default). On a host-side interface it is the MTU the container side
	// must carry too: the CNI plugin copies it into the container-side
	// intent and its result.
	MTU uint32 `json:"mtu,omitempty"`
	// Creating names an object VPP knows by what it is rather than by
	// uspace's tag (an af_packet's Linux interface, a tunnel's endpoints
	// and VNI) that the agent is about to create, or whose create failed
	// in a way that may have made it: written before the create, it is
	// the agent's proof that such an object found untagged later is its
	// own, left by a crash between create and tag. Without it an untagged
	// one is an operator's, and never taken.
	Creating  string    `json:"creating,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// VolumeStatus is what the host agent applied for a volume intent.
type VolumeStatus struct {
	TypeMeta
	ObservedRevision int64  `json:"observedRevision"`
	Ready            bool   `json:"ready"`
	Error            string `json:"error,omitempty"`
	// Retrying marks Error as transient, as in InterfaceStatus.
	Retrying   bool   `json:"retrying,omitempty"`
	SocketPath string `json:"socketPath,omitempty"`
	DevicePath string `json:"devicePath,omitempty"`
	Major      uint32 `json:"major,omitempty"`
	Minor      uint32 `json:"minor,omitempty"`
	// Controller and Bdev name the SPDK objects the volume uses. Ownership
	// is recorded, and in etcd, before the agent creates an object:
	// OwnsController and OwnsBdev are set only for what the agent creates
	// (OwnsController is cleared again when SPDK refuses the create), and
	// remove, drift repair and the clean-up after a restart delete only
	// owned objects the agent still recognises: an owned bdev by its
	// UUID, an owned controller by ControllerID, recorded once SPDK made
	// it (the identity of the socket file SPDK made with it). Adopted says
	// the controller existed before the volume (made by hand) and was
	// taken as it is; it is never deleted or re-created.
	Controller     string    `json:"controller,omitempty"`
	Bdev           string    `json:"bdev,omitempty"`
	OwnsController bool      `json:"ownsController,omitempty"`
	ControllerID   string    `json:"controllerId,omitempty"`
	OwnsBdev       bool      `json:"ownsBdev,omitempty"`
	Adopted        bool      `json:"adopted,omitempty"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

// Stamp sets the time a status was written. Writers compare statuses with
// the stamp zeroed so an unchanged status is never rewritten.
func (s *InterfaceStatus) Stamp(t time.Time) { s.UpdatedAt = t }

// Stamp sets the time a status was written.
func (s *VolumeStatus) Stamp(t time.Time) { s.UpdatedAt = t }

// Outcome is what a writer waiting for a status of revision rev learns
// from it: the agent applied that revision (done), refused it (terminal:
// Error without Retrying), or has not settled it yet.
type Outcome int

const (
	OutcomePending Outcome = iota
	OutcomeDone
	OutcomeTerminal
)

func outcome(observed, rev int64, ready bool, errMsg string, retrying bool) Outcome {
	switch {
	case observed < rev:
		return OutcomePending
	case errMsg != "" && !retrying:
		return OutcomeTerminal
	case ready:
		return OutcomeDone
	}
	return OutcomePending
}

// OutcomeFor says where the status stands for revision rev.
func (s *InterfaceStatus) OutcomeFor(rev int64) Outcome {
	return outcome(s.ObservedRevision, rev, s.Ready, s.Error, s.Retrying)
}

// OutcomeFor says where the status stands for revision rev.
func (s *VolumeStatus) OutcomeFor(rev int64) Outcome {
	return outcome(s.ObservedRevision, rev, s.Ready, s.Error, s.Retrying)
}
