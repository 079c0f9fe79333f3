package cni

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// BuildResult is the ADD result: the host-side interface (named by its
// socket path, no sandbox), the container-side interface (sandbox = netns),
// and the IPAM addresses, routes and DNS, printed in cniVersion. ipam may be
// nil (no IPAM).
func BuildResult(cniVersion string, in *Intents, netns string, ipam *types100.Result) (types.Result, error) {
	r := &types100.Result{CNIVersion: types100.ImplementedSpecVersion}
	hostName := socketOf(in.Host)
	r.Interfaces = []*types100.Interface{
		{Name: hostName, Mac: in.Host.MAC},
		{Name: in.Container.Name, Mac: in.Container.MAC, Sandbox: netns},
	}
	if ipam != nil {
		idx := 1
		for _, ip := range ipam.IPs {
			c := *ip
			c.Interface = &idx
			r.IPs = append(r.IPs, &c)
		}
		r.Routes = ipam.Routes
		r.DNS = ipam.DNS
	}
	out, err := r.GetAsVersion(cniVersion)
	if err != nil {
		return nil, types.NewError(types.ErrIncompatibleCNIVersion,
			fmt.Sprintf("cannot print the result as cniVersion %q", cniVersion), err.Error())
	}
	return out, nil
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
