// Command hostlocal stands in for the host-local IPAM plugin in the CNI
// integration tests, installed under the name "host-local". The real one
// (containernetworking/plugins/plugins/ipam/host-local) needs
// github.com/alexflint/go-filemutex, which this module's go.sum does not
// pin. This one reads the same config subset the upstream userspace CNI
// examples use (subnet, rangeStart, rangeEnd, gateway, routes, dataDir) and
// keeps host-local's on-disk format: one file per reserved IP under
// <dataDir>/<network>/, holding "<containerID>\r\n<ifname>", so a test can
// see what is allocated. ipam.testDelay (a duration) makes ADD slow, for
// tests that need something to happen while IPAM runs.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

const defaultDataDir = "/var/lib/cni/networks"

type conf struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	IPAM       struct {
		Subnet     string `json:"subnet"`
		RangeStart string `json:"rangeStart"`
		RangeEnd   string `json:"rangeEnd"`
		Gateway    string `json:"gateway"`
		Routes     []struct {
			Dst string `json:"dst"`
			GW  string `json:"gw"`
		} `json:"routes"`
		DataDir   string `json:"dataDir"`
		TestDelay string `json:"testDelay"`
	} `json:"ipam"`
}

func load(data []byte) (*conf, netip.Prefix, string, error) {
	var c conf
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, netip.Prefix{}, "", err
	}
	pfx, err := netip.ParsePrefix(c.IPAM.Subnet)
	if err != nil {
		return nil, pfx, "", fmt.Errorf("ipam.subnet: %v", err)
	}
	dir := c.IPAM.DataDir
	if dir == "" {
		dir = defaultDataDir
	}
	dir = filepath.Join(dir, c.Name)
	return &c, pfx.Masked(), dir, os.MkdirAll(dir, 0o755)
}

// lock serialises plugins on one network, as host-local's flock does.
func lock(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

func owner(id, ifname string) string { return strings.TrimSpace(id) + "\r\n" + ifname }

// reserved returns the IP files of this attachment.
func reserved(dir, id, ifname string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil && string(b) == owner(id, ifname) {
			out = append(out, e.Name())
		}
	}
	return out
}

func cmdAdd(args *skel.CmdArgs) error {
	c, pfx, dir, err := load(args.StdinData)
	if err != nil {
		return err
	}
	if d, err := time.ParseDuration(c.IPAM.TestDelay); err == nil {
		time.Sleep(d)
	}
	unlock, err := lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	if got := reserved(dir, args.ContainerID, args.IfName); len(got) > 0 {
		// As host-local: the spec forbids a second allocation.
		return fmt.Errorf("%s has been allocated to %s, duplicate allocation is not allowed", got[0], args.ContainerID)
	}
	start := pfx.Addr().Next().Next()
	if c.IPAM.RangeStart != "" {
		start = netip.MustParseAddr(c.IPAM.RangeStart)
	}
	end := lastAddr(pfx).Prev()
	if c.IPAM.RangeEnd != "" {
		end = netip.MustParseAddr(c.IPAM.RangeEnd)
	}
	var ip netip.Addr
	for a := start; a.Compare(end) <= 0; a = a.Next() {
		if a.String() == c.IPAM.Gateway {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, a.String()), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			continue
		}
		_, err = f.WriteString(owner(args.ContainerID, args.IfName))
		f.Close()
		if err != nil {
			return err
		}
		ip = a
		break
	}
	if !ip.IsValid() {
		return fmt.Errorf("no IP addresses available in range set: %s-%s", start, end)
	}
	res := &types100.Result{CNIVersion: types100.ImplementedSpecVersion}
	ipc := &types100.IPConfig{Address: net.IPNet{IP: net.IP(ip.AsSlice()), Mask: net.CIDRMask(pfx.Bits(), ip.BitLen())}}
	if c.IPAM.Gateway != "" {
		ipc.Gateway = net.ParseIP(c.IPAM.Gateway)
	}
	res.IPs = []*types100.IPConfig{ipc}
	for _, r := range c.IPAM.Routes {
		_, dst, err := net.ParseCIDR(r.Dst)
		if err != nil {
			return fmt.Errorf("ipam.routes: %v", err)
		}
		res.Routes = append(res.Routes, &types.Route{Dst: *dst, GW: net.ParseIP(r.GW)})
	}
	return types.PrintResult(res, c.CNIVersion)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func cmdDel(args *skel.CmdArgs) error {
	_, _, dir, err := load(args.StdinData)
	if err != nil {
		return err
	}
	unlock, err := lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	for _, f := range reserved(dir, args.ContainerID, args.IfName) {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

func cmdCheck(args *skel.CmdArgs) error {
	_, _, dir, err := load(args.StdinData)
	if err != nil {
		return err
	}
	if len(reserved(dir, args.ContainerID, args.IfName)) == 0 {
		return fmt.Errorf("host-local: failed to find address for %s/%s", args.ContainerID, args.IfName)
	}
	return nil
}

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck},
		version.All, "host-local stand-in for uspace tests")
}
