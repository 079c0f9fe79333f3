package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"time"

	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/uspace-io/uspace/schema"
)

// Attachment is one CNI attachment: who asks, for which interface.
type Attachment struct {
	Host        string
	ContainerID string
	IfName      string
	Netns       string
	Pod         PodArgs
}

// Intents are the three values one ADD writes.
type Intents struct {
	Host      *schema.HostInterface
	Container *schema.ContainerInterface
	Meta      *schema.ContainerMeta
}

// Keys of an attachment.
func (a Attachment) HostKey() schema.Key {
	return schema.Key{Kind: schema.KindInterfaceKey, Host: a.Host, Container: a.ContainerID, Interface: a.IfName}
}

func (a Attachment) ContainerKey() schema.Key {
	return schema.Key{Kind: schema.KindContainerInterfaceKey, Host: a.Host, Container: a.ContainerID, Interface: a.IfName}
}

func (a Attachment) MetaKey() schema.Key {
	return schema.Key{Kind: schema.KindContainerMetaKey, Host: a.Host, Container: a.ContainerID}
}

// idPrefixLen is upstream's cid12: the readable part of a socket name.
const idPrefixLen = 12

// idHashLen hex digits of SHA-256 of the full container ID make a socket
// name unique even when IDs share their first 12 characters (cnitool's IDs
// are all "cnitool-" + 4 hex digits there).
const idHashLen = 10

func idTag(containerID string) string {
	prefix := containerID
	if len(prefix) > idPrefixLen {
		prefix = prefix[:idPrefixLen]
	}
	sum := sha256.Sum256([]byte(containerID))
	return prefix + "-" + hex.EncodeToString(sum[:])[:idHashLen]
}

// SocketFileName is the default socket file name for an attachment:
// upstream's shapes (`memif-<cid12>-<ifname>.sock`, `<cid12>-<ifname>`)
// with a hash of the full container ID after cid12. Its length is bounded
// (at most 49 bytes), so with the default sharedDir the path always fits in
// sun_path.
func SocketFileName(t schema.IfType, containerID, ifname string) string {
	if t == schema.IfTypeVhostUser {
		return idTag(containerID) + "-" + ifname
	}
	return "memif-" + idTag(containerID) + "-" + ifname + ".sock"
}

// AbstractSocketName is the default name of an attachment's abstract memif
// socket: short, because VPP's socket filename holds the name and the
// container's netns path in 107 bytes (schema.ValidateMemifSocket), and
// unique within the netns (one per interface). Its prefix is what tells
// the agents the socket is uspace's (schema.AbstractSocketOwnerPrefix).
func AbstractSocketName(containerID, ifname string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifname))
	return schema.AbstractSocketOwnerPrefix + hex.EncodeToString(sum[:8])
}

// SocketPath is where the socket of this attachment lives. A memif's is by
// default an abstract socket in the container's netns ("@name", the same
// for both ends: each VPP opens it in the container's netns); with
// uspace.memifSocket "file", and for vhost-user, a file in sharedDir on
// the host and, because the shared directory is bind-mounted at the same
// path, in the container. field names the config field to blame when it
// does not fit.
func (c *NetConf) SocketPath(containerID, ifname string) (path, field string) {
	t := schema.IfType(c.Host.IfType)
	file, field := c.Host.Memif.Socketfile, "host.memif.socketfile"
	if t == schema.IfTypeVhostUser {
		file, field = c.Host.Vhost.Socketfile, "host.vhost.socketfile"
	}
	if t == schema.IfTypeMemif && c.abstractMemif() {
		if file == "" {
			file, field = AbstractSocketName(containerID, ifname), "uspace.memifSocket"
		}
		return schema.AbstractSocketPrefix + file, field
	}
	if file == "" {
		file, field = SocketFileName(t, containerID, ifname), "sharedDir"
	}
	return filepath.Join(c.SharedDir, file), field
}

// DeterministicMAC derives a locally administered unicast MAC from the
// attachment, so a repeated ADD builds identical intents.
func DeterministicMAC(side, containerID, ifname string) string {
	sum := sha256.Sum256([]byte("uspace/mac/" + side + "/" + containerID + "/" + ifname))
	mac := net.HardwareAddr{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]}
	return mac.String()
}

// BuildIntents builds the host-side intent, the container-side intent and
// the container meta of one attachment. ipam may be nil (no IPAM, or
// validation before IPAM runs). The memif id is 0; the ADD transaction
// allocates the real one (AllocMemifID). Every value is validated, so an
// error here means nothing was written; it is a CNI error naming the field.
func BuildIntents(conf *NetConf, att Attachment, ipam *types100.Result, now time.Time) (*Intents, error) {
	sock, containerMAC, err := checkAttachment(conf, att)
	if err != nil {
		return nil, err
	}
	t := schema.IfType(conf.Host.IfType)
	h := &schema.HostInterface{
		Host:      att.Host,
		Container: att.ContainerID,
		Name:      att.IfName,
		Type:      t,
		NetType:   conf.hostNetType(),
		Network:   conf.Name,
		MAC:       DeterministicMAC("host", att.ContainerID, att.IfName),
	}
	if h.NetType == schema.NetTypeBridge {
		bd, prob := conf.bridgeDomain()
		if prob != "" {
			return nil, configErr([]string{prob})
		}
		h.Bridge = bd
		h.VNI = conf.USpace.VNI
	}
	ct := &schema.ContainerInterface{
		Host:      att.Host,
		Container: att.ContainerID,
		Name:      att.IfName,
		Type:      t,
		MAC:       containerMAC,
	}
	switch t {
	case schema.IfTypeMemif:
		mode := conf.hostMemifMode()
		role := schema.MemifRole(conf.Host.Memif.Role)
		h.Memif = &schema.MemifSpec{Role: role, Mode: mode, SocketPath: sock}
		if conf.abstractMemif() {
			h.Memif.Netns = att.Netns
		}
		ct.Memif = &schema.MemifSpec{Role: role.Opposite(), Mode: mode, SocketPath: sock}
		if mode != schema.MemifEthernet {
			// An IP-mode memif carries IP packets, no Ethernet frames: it
			// has no MAC (VPP answers -9 Unimplemented to setting one).
			h.MAC, ct.MAC = "", ""
		}
	case schema.IfTypeVhostUser:
		mode := conf.hostVhostMode()
		h.Vhost = &schema.VhostSpec{Mode: mode, SocketPath: sock}
		ct.Vhost = &schema.VhostSpec{Mode: mode.Opposite(), SocketPath: sock}
	}
	if ipam != nil {
		ct.IPs, ct.Routes = ipsAndRoutes(ipam)
	}
	meta := &schema.ContainerMeta{
		Host:         att.Host,
		Container:    att.ContainerID,
		Netns:        att.Netns,
		Network:      conf.Name,
		Networks:     map[string]string{att.IfName: conf.Name},
		PodNamespace: att.Pod.Namespace,
		PodName:      att.Pod.Name,
		PodUID:       att.Pod.UID,
		Interfaces:   []string{att.IfName},
		CreatedAt:    now.UTC(),
	}
	// Encode validates each value exactly as it will be written.
	for _, o := range []schema.Object{h, ct, meta} {
		if _, err := schema.Encode(o); err != nil {
			return nil, configErr([]string{err.Error()})
		}
	}
	return &Intents{Host: h, Container: ct, Meta: meta}, nil
}

// checkAttachment validates the names and settings every intent of the
// attachment uses, and returns its socket path and container MAC.
func checkAttachment(conf *NetConf, att Attachment) (sock, containerMAC string, err error) {
	var problems []string
	add := func(err error) {
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	add(schema.ValidateHost("uspace.host", att.Host))
	add(schema.ValidateContainerID("CNI_CONTAINERID", att.ContainerID))
	add(schema.ValidateIfName("CNI_IFNAME", att.IfName))
	if conf.Name == "" {
		problems = append(problems, fieldProblem("name", "", "required"))
	}
	sock, sockField := conf.SocketPath(att.ContainerID, att.IfName)
	netns := ""
	if conf.abstractMemif() {
		netns = att.Netns
	}
	if err := schema.ValidateMemifSocket(sockField, "CNI_NETNS", sock, netns, ""); err != nil {
		add(fmt.Errorf("socket path: %w", err))
	}
	containerMAC = DeterministicMAC("container", att.ContainerID, att.IfName)
	switch {
	case conf.RuntimeConfig.MAC != "":
		containerMAC = conf.RuntimeConfig.MAC
	case att.Pod.MAC != "":
		if err := schema.ValidateMAC("CNI_ARGS MAC", att.Pod.MAC); err != nil {
			add(err)
		} else {
			containerMAC = att.Pod.MAC
		}
	}
	if len(problems) > 0 {
		return "", "", configErr(problems)
	}
	return sock, containerMAC, nil
}

// ipsAndRoutes turns an IPAM result into the container side's addresses
// and routes. A route without a gateway gets the gateway of the first
// address of its family, so the container agent needs no CNI knowledge.
func ipsAndRoutes(r *types100.Result) ([]schema.IPAddress, []schema.Route) {
	var ips []schema.IPAddress
	var gw4, gw6 net.IP
	for _, ip := range r.IPs {
		a := schema.IPAddress{Address: ip.Address.String()}
		if ip.Gateway != nil {
			a.Gateway = ip.Gateway.String()
			if ip.Gateway.To4() != nil {
				if gw4 == nil {
					gw4 = ip.Gateway
				}
			} else if gw6 == nil {
				gw6 = ip.Gateway
			}
		}
		ips = append(ips, a)
	}
	var routes []schema.Route
	for _, rt := range r.Routes {
		if rt == nil {
			continue
		}
		out := schema.Route{Dst: rt.Dst.String()}
		gw := rt.GW
		if gw == nil {
			if rt.Dst.IP.To4() != nil {
				gw = gw4
			} else {
				gw = gw6
			}
		}
		if gw != nil {
			out.GW = gw.String()
		}
		routes = append(routes, out)
	}
	return ips, routes
}

// socketKey tells sockets apart: an abstract socket is one per netns.
func socketKey(h *schema.HostInterface) string {
	if h.Memif != nil && h.Memif.Netns != "" {
		return h.Memif.SocketPath + " in " + h.Memif.Netns
	}
	return socketOf(h)
}

// socketOf is the socket path of a host intent.
func socketOf(h *schema.HostInterface) string { return socketPath(h.Memif, h.Vhost) }

// socketPath is the socket of whichever end an intent has.
func socketPath(m *schema.MemifSpec, v *schema.VhostSpec) string {
	switch {
	case m != nil:
		return m.SocketPath
	case v != nil:
		return v.SocketPath
	}
	return ""
}

// AllocMemifID returns the lowest memif id not used on want's socket by
// the other host intents of this host (others, keyed by intent key; self is
// want's own key and is skipped). It also refuses socket sharing that can
// never work: a vhost-user socket shared with anything, or a memif socket
// on which the host would be master for one interface and slave for
// another (VPP opens a socket file either as listener or as client).
func AllocMemifID(selfKey string, want *schema.HostInterface, others map[string]*schema.HostInterface) (uint32, error) {
	sock := socketKey(want)
	used := map[uint32]bool{}
	for key, o := range others {
		if key == selfKey || socketKey(o) != sock {
			continue
		}
		who := fmt.Sprintf("container %s interface %s", o.Container, o.Name)
		switch {
		case want.Vhost != nil || o.Vhost != nil:
			return 0, configErr([]string{fieldProblem("host.vhost.socketfile", filepath.Base(sock),
				"socket %s is already used by %s: a vhost-user socket carries one interface", sock, who)})
		case o.Memif.Role != want.Memif.Role:
			return 0, configErr([]string{fieldProblem("host.memif.role", string(want.Memif.Role),
				"socket %s is already used as %s by %s: VPP opens one socket file in one role", sock, o.Memif.Role, who)})
		}
		used[o.Memif.ID] = true
	}
	if want.Memif == nil {
		return 0, nil
	}
	for id := uint32(0); ; id++ {
		if !used[id] {
			return id, nil
		}
	}
}
