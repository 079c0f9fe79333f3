package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/uspace-io/uspace/schema"
)

// ifFieldsVersion is the first CNI version whose result interfaces have
// socketPath and mtu fields.
const ifFieldsVersion = "1.1.0"

// BuildResult is the ADD result, printed in cniVersion: the host-side
// interface (named as the host agent's status reports VPP's name for it,
// with its socket path in socketPath from CNI 1.1 on, no sandbox), the
// container-side interface (sandbox = netns, with its socket as the
// container sees it in socketPath from CNI 1.1 on), both with the container
// side's MTU from CNI 1.1 on (none: VPP's default), and the container
// side's addresses and routes as the intent holds them. Built from the intents
// alone (DNS aside, which uspace does not store: dns is IPAM's, nil on a
// repeated ADD), so a repeated ADD answers what the first did. st may be
// nil (no status).
func BuildResult(cniVersion string, in *Intents, netns string, dns *types.DNS, st *schema.InterfaceStatus) (types.Result, error) {
	r := &types100.Result{CNIVersion: types100.ImplementedSpecVersion}
	host := &types100.Interface{Name: HostIfName(in.Host, st), Mac: in.Host.MAC}
	ctr := &types100.Interface{Name: in.Container.Name, Mac: in.Container.MAC, Sandbox: netns}
	if ok, _ := version.GreaterThanOrEqualTo(cniVersion, ifFieldsVersion); ok {
		host.SocketPath = socketOf(in.Host)
		ctr.SocketPath = socketPath(in.Container.Memif, in.Container.Vhost) // as the container sees it
		// Both ends carry the MTU the host agent set (carryMTU).
		host.Mtu, ctr.Mtu = int(in.Container.MTU), int(in.Container.MTU)
	}
	r.Interfaces = []*types100.Interface{host, ctr}
	idx := 1
	for _, a := range in.Container.IPs {
		ip, n, err := net.ParseCIDR(a.Address)
		if err != nil {
			return nil, types.NewError(types.ErrInternal, fmt.Sprintf("container-side intent address %q", a.Address), err.Error())
		}
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		c := &types100.IPConfig{Interface: &idx, Address: net.IPNet{IP: ip, Mask: n.Mask}, Gateway: net.ParseIP(a.Gateway)}
		r.IPs = append(r.IPs, c)
	}
	for _, rt := range in.Container.Routes {
		_, dst, err := net.ParseCIDR(rt.Dst)
		if err != nil {
			return nil, types.NewError(types.ErrInternal, fmt.Sprintf("container-side intent route %q", rt.Dst), err.Error())
		}
		r.Routes = append(r.Routes, &types.Route{Dst: *dst, GW: net.ParseIP(rt.GW)})
	}
	if dns != nil {
		r.DNS = *dns
	}
	out, err := r.GetAsVersion(cniVersion)
	if err != nil {
		return nil, types.NewError(types.ErrIncompatibleCNIVersion,
			fmt.Sprintf("cannot print the result as cniVersion %q", cniVersion), err.Error())
	}
	return out, nil
}

// maxIfName is the longest interface name Linux takes (IFNAMSIZ less its
// NUL), what runtimes and Multus expect of a result's interface names.
const maxIfName = 15

// HostIfName names the host side in a result: VPP's interface name as the
// agent reported it when it fits in maxIfName bytes ("memif1/0"), else
// (VPP's "VirtualEthernet0/0/0", or an agent that did not report it) a
// stable "us-" name of 15 bytes derived from the intent key. Never the
// socket path.
func HostIfName(h *schema.HostInterface, st *schema.InterfaceStatus) string {
	if st != nil && st.InterfaceName != "" && len(st.InterfaceName) <= maxIfName {
		return st.InterfaceName
	}
	key := schema.Key{Kind: schema.KindInterfaceKey, Host: h.Host, Container: h.Container, Interface: h.Name}
	sum := sha256.Sum256([]byte(key.String()))
	return "us-" + hex.EncodeToString(sum[:])[:12]
}

// ipamResult converts whatever version the IPAM plugin printed.
func ipamResult(r types.Result) (*types100.Result, error) {
	if r == nil {
		return nil, nil
	}
	res, err := types100.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("converting the IPAM result: %w", err)
	}
	return res, nil
}

// containerIface finds the container-side interface in a result.
func containerIface(r *types100.Result, ifname string) (int, *types100.Interface) {
	for i, itf := range r.Interfaces {
		if itf != nil && itf.Name == ifname && itf.Sandbox != "" {
			return i, itf
		}
	}
	return -1, nil
}
