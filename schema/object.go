package schema

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

func (s *MemifSpec) validate(field, root string) error {
	return errors.Join(
		oneOf(field+".role", s.Role, MemifMaster, MemifSlave),
		memifMode(field+".mode", s.Mode),
		ValidateMemifSocket(field+".socketPath", field+".netns", s.SocketPath, s.Netns, root),
		ringSize(field+".ringSize", s.RingSize),
	)
}

// memifMode refuses inject-punt by name: VPP 25.02 crashes creating such a
// memif, so no intent may ask for one.
func memifMode(field string, m MemifMode) error {
	if m == MemifInjectPunt {
		return fieldErr(field, string(m), "is not supported: VPP 25.02 crashes creating an inject-punt memif; use \"ethernet\" or \"ip\"")
	}
	return oneOf(field, m, MemifEthernet, MemifIP)
}

// ringSize accepts 0 (VPP default) or a power of two VPP accepts.
func ringSize(field string, n uint32) error {
	if n != 0 && (n&(n-1) != 0 || n < 8 || n > 65536) {
		return fieldErr(field, strconv.FormatUint(uint64(n), 10), "must be 0 (default) or a power of two between 8 and 65536")
	}
	return nil
}

func (s *VhostSpec) validate(field string) error {
	return errors.Join(
		oneOf(field+".mode", s.Mode, VhostServer, VhostClient),
		ValidateSocketPath(field+".socketPath", s.SocketPath, ""),
	)
}

// validateEnds checks that exactly the spec matching typ is present.
func validateEnds(typ IfType, memif *MemifSpec, vhost *VhostSpec) error {
	if err := oneOf("type", typ, IfTypeMemif, IfTypeVhostUser); err != nil {
		return err
	}
	switch {
	case typ == IfTypeMemif && (memif == nil || vhost != nil):
		return fieldErr("memif", string(typ), "a memif interface needs memif settings and no vhost settings")
	case typ == IfTypeVhostUser && (vhost == nil || memif != nil):
		return fieldErr("vhost", string(typ), "a vhostuser interface needs vhost settings and no memif settings")
	case memif != nil:
		return memif.validate("memif", "")
	default:
		return vhost.validate("vhost")
	}
}

func (o *HostInterface) Validate() error {
	errs := []error{
		ValidateHost("host", o.Host),
		ValidateContainerID("container", o.Container),
		ValidateIfName("name", o.Name),
		validateEnds(o.Type, o.Memif, o.Vhost),
		oneOf("netType", o.NetType, NetTypeBridge, NetTypeInterface),
		ValidateMTU("mtu", o.MTU),
		ValidateMAC("mac", o.MAC),
	}
	if o.Network != "" {
		errs = append(errs, ValidateNetworkName("network", o.Network))
	}
	if o.NetType == NetTypeBridge && o.Bridge == 0 {
		errs = append(errs, fieldErr("bridgeDomain", "0", "netType bridge needs a bridge domain id of 1 or more"))
	}
	if o.NetType == NetTypeInterface && o.Bridge != 0 {
		errs = append(errs, fieldErr("bridgeDomain", fmt.Sprint(o.Bridge), "netType interface takes no bridge domain"))
	}
	if o.VNI != 0 {
		errs = append(errs, ValidateVNI("vni", o.VNI))
		if o.NetType != NetTypeBridge || o.Network == "" {
			errs = append(errs, fieldErr("vni", fmt.Sprint(o.VNI), "only an interface of netType bridge on a named network can span hosts"))
		}
	}
	return errors.Join(errs...)
}

func (o *ContainerInterface) Validate() error {
	errs := []error{
		ValidateHost("host", o.Host),
		ValidateContainerID("container", o.Container),
		ValidateIfName("name", o.Name),
		validateEnds(o.Type, o.Memif, o.Vhost),
		ValidateMTU("mtu", o.MTU),
		ValidateMAC("mac", o.MAC),
	}
	for i, ip := range o.IPs {
		errs = append(errs, ValidateCIDR(fmt.Sprintf("ips[%d].address", i), ip.Address))
		if ip.Gateway != "" {
			errs = append(errs, ValidateIP(fmt.Sprintf("ips[%d].gateway", i), ip.Gateway))
		}
	}
	for i, r := range o.Routes {
		errs = append(errs, ValidateCIDR(fmt.Sprintf("routes[%d].dst", i), r.Dst))
		if r.GW != "" {
			errs = append(errs, ValidateIP(fmt.Sprintf("routes[%d].gw", i), r.GW))
		}
	}
	return errors.Join(errs...)
}

func (o *ContainerMeta) Validate() error {
	errs := []error{
		ValidateHost("host", o.Host),
		ValidateContainerID("container", o.Container),
	}
	if o.Network != "" {
		errs = append(errs, ValidateNetworkName("network", o.Network))
	}
	for i, n := range o.Interfaces {
		errs = append(errs, ValidateIfName(fmt.Sprintf("interfaces[%d]", i), n))
	}
	for ifname, n := range o.Networks {
		errs = append(errs, ValidateIfName("networks", ifname), ValidateNetworkName(fmt.Sprintf("networks[%s]", ifname), n))
	}
	return errors.Join(errs...)
}

func (o *Network) Validate() error {
	errs := []error{ValidateNetworkName("name", o.Name), ValidateMTU("mtu", o.MTU)}
	if o.VNI != 0 {
		errs = append(errs, ValidateVNI("vni", o.VNI))
	}
	if o.Bridge == 0 {
		errs = append(errs, fieldErr("bridgeDomain", "0", "must be 1 or more"))
	}
	return errors.Join(errs...)
}

func (o *Volume) Validate() error {
	errs := []error{
		ValidateHost("host", o.Host),
		ValidateVolumeName("name", o.Name),
		oneOf("type", o.Type, VolumeBlk, VolumeSCSI),
		// The device name is a file name under the root and an SPDK
		// controller name, so it follows the volume-name alphabet.
		ValidateVolumeName("device", o.Device),
		ValidateDir("root", o.Root),
	}
	if o.Bdev != "" || o.Malloc != nil {
		errs = append(errs, ValidateVolumeName("bdev", o.Bdev))
	}
	for i, id := range append(append([]string(nil), o.Mounts...), o.Mounting...) {
		if id == "" || len(id) > MaxNameLen {
			errs = append(errs, fieldErr(fmt.Sprintf("mounts[%d]", i), id, "must be 1 to %d characters", MaxNameLen))
		}
	}
	if o.Minor > MaxMinor {
		errs = append(errs, fieldErr("minor", fmt.Sprint(o.Minor), "must be at most %d", MaxMinor))
	}
	if m := o.Malloc; m != nil {
		if m.BlockSize == 0 || m.BlockSize%512 != 0 {
			errs = append(errs, fieldErr("malloc.blockSize", fmt.Sprint(m.BlockSize), "must be a non-zero multiple of 512"))
		} else if m.SizeBytes == 0 || m.SizeBytes%uint64(m.BlockSize) != 0 {
			errs = append(errs, fieldErr("malloc.sizeBytes", fmt.Sprint(m.SizeBytes), "must be a non-zero multiple of the block size"))
		}
	}
	if o.Root != "" {
		// The socket SPDK creates must fit in sun_path.
		errs = append(errs, ValidateSocketPath("device", o.SocketPath(), ""))
	}
	return errors.Join(errs...)
}

// SocketPath is where SPDK creates the controller's vhost-user socket.
func (o *Volume) SocketPath() string { return filepath.Join(o.Root, "block", "sockets", o.Device) }

// DevicePath is the block node Kata resolves to the socket.
func (o *Volume) DevicePath() string { return filepath.Join(o.Root, "block", "devices", o.Device) }

func (o *Agent) Validate() error { return ValidateHost("host", o.Host) }

// Validate checks what an agent acts on when the status outlives its
// intent: the socket path it may remove must be one an intent could hold.
func (o *InterfaceStatus) Validate() error {
	errs := []error{ValidateMTU("mtu", o.MTU)}
	if o.SocketPath != "" {
		errs = append(errs, ValidateMemifSocket("socketPath", "", o.SocketPath, "", ""))
	}
	return errors.Join(append(errs, validateRetrying(o.Retrying, o.Error))...)
}

// Validate checks the paths a volume status names: the host agent deletes
// them when the volume goes, so each must be exactly the layout of a volume
// (<root>/block/devices/<device>, <root>/block/sockets/<device>, the same
// root and device for both), never an arbitrary file. The agent also checks
// that the root is one it was configured with before touching either.
func (o *VolumeStatus) Validate() error {
	var errs []error
	var roots, names []string
	for _, p := range []struct{ field, path, dir string }{
		{"devicePath", o.DevicePath, "devices"},
		{"socketPath", o.SocketPath, "sockets"},
	} {
		if p.path == "" {
			continue
		}
		root, name, err := SplitVolumePath(p.field, p.path, p.dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		roots, names = append(roots, root), append(names, name)
	}
	if len(roots) == 2 && (roots[0] != roots[1] || names[0] != names[1]) {
		errs = append(errs, fieldErr("socketPath", o.SocketPath, "must be the socket of device %s", o.DevicePath))
	}
	if o.Controller != "" {
		errs = append(errs, ValidateVolumeName("controller", o.Controller))
	}
	if o.Bdev != "" {
		errs = append(errs, ValidateVolumeName("bdev", o.Bdev))
	}
	return errors.Join(append(errs, validateRetrying(o.Retrying, o.Error))...)
}

// SplitVolumePath splits a volume's device node or socket path,
// <root>/block/<dir>/<name> with dir "devices" or "sockets", into root and
// name, refusing any other shape.
func SplitVolumePath(field, p, dir string) (root, name string, err error) {
	if err := ValidateDir(field, p); err != nil {
		return "", "", err
	}
	name = filepath.Base(p)
	parent := filepath.Dir(p)
	if filepath.Base(parent) != dir || filepath.Base(filepath.Dir(parent)) != "block" {
		return "", "", fieldErr(field, p, "must be <root>/block/%s/<device>", dir)
	}
	if err := ValidateVolumeName(field, name); err != nil {
		return "", "", err
	}
	return filepath.Dir(filepath.Dir(parent)), name, nil
}

// UnderRoot checks that path lies inside one of roots (each clean and
// absolute): the host agent's last check before it creates or deletes a
// file for a volume.
func UnderRoot(field, path string, roots []string) error {
	for _, r := range roots {
		if rel, err := filepath.Rel(r, path); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			return nil
		}
	}
	return fieldErr(field, path, "lies outside the volume roots %v", roots)
}

func validateRetrying(retrying bool, err string) error {
	if retrying && err == "" {
		return fieldErr("retrying", "true", "needs the error that is being retried")
	}
	return nil
}

func (o *Member) Validate() error {
	return errors.Join(
		ValidateHost("host", o.Host),
		ValidateNetworkName("network", o.Network),
		ValidateVNI("vni", o.VNI),
		ValidateIP("underlay", o.Underlay),
	)
}

func (o *Tunnel) Validate() error {
	errs := []error{
		ValidateHost("host", o.Host),
		ValidateNetworkName("network", o.Network),
		ValidateHost("peer", o.Peer),
	}
	if o.Error != "" {
		return errors.Join(errs...)
	}
	errs = append(errs, ValidateVNI("vni", o.VNI), ValidateIP("src", o.Src), ValidateIP("dst", o.Dst))
	if o.Bridge == 0 {
		errs = append(errs, fieldErr("bridgeDomain", "0", "must be 1 or more"))
	}
	return errors.Join(errs...)
}

func (o *Uplink) Validate() error {
	return errors.Join(
		ValidateHost("host", o.Host),
		ValidateIfName("hostIfName", o.HostIfName),
		ValidateCIDR("address", o.Address),
		ValidateMTU("mtu", o.MTU),
	)
}
