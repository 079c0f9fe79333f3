package vppsim

import (
	"fmt"
	"os"
	"syscall"

	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/vhost_user"
)

type vhostArgs struct {
	isServer          bool
	sockFilename      string
	renumber          bool
	customDevInstance uint32
	useCustomMac      bool
	mac               ethernet_types.MacAddress
	tag               string
	gso, packed       bool
	eventIdx          bool
}

// vhostCreate follows vhost_user_create_if(): an existing interface on the
// same socket path answers IF_ALREADY_EXISTS with that interface's index.
func (s *Sim) vhostCreate(a vhostArgs) (int32, uint32) {
	w := s.st
	if a.sockFilename == "" {
		return rvInvalidArgument, invalidIndex
	}
	if i := w.vhostByPath[a.sockFilename]; i != nil {
		return rvIfAlreadyExists, i.swIfIndex
	}
	var ln *socketListener
	if a.isServer {
		if len(a.sockFilename) >= sunPathMax {
			return rvSyscallError2, invalidIndex
		}
		var err error
		ln, err = listenSocketFile("unix", a.sockFilename)
		if err != nil {
			s.log.Warn("vppsim: vhost-user listener", "path", a.sockFilename, "err", err)
			return rvSyscallError2, invalidIndex
		}
	}
	inst := w.allocVhostInstance()
	nameInst := inst
	if a.renumber {
		nameInst = a.customDevInstance
	}
	i := &iface{
		swIfIndex: w.allocSwIfIndex(),
		name:      fmt.Sprintf("%s%d", vhostUserInterfacePrefix, nameInst),
		kind:      kindVhost,
		ethernet:  true,
		linkMtu:   defaultMTU,
		mtu:       [4]uint32{defaultMTU, 0, 0, 0},
		tag:       truncTag(a.tag),
		vhost: &vhostIf{
			devInstance: inst, sockFilename: a.sockFilename, isServer: a.isServer,
			gso: a.gso, packed: a.packed, eventIdx: a.eventIdx, ln: ln,
		},
	}
	if a.useCustomMac {
		i.mac = a.mac
	} else {
		i.mac = w.randomMAC()
	}
	w.ifaces[i.swIfIndex] = i
	// VPP announces every new interface (flags 0: admin and link down).
	w.events = append(w.events, pendingEvent{swIfIndex: i.swIfIndex})
	w.vhostByPath[a.sockFilename] = i
	return rvOK, i.swIfIndex
}

func hCreateVhostUserIf(s *Sim, _ *client, req *vhost_user.CreateVhostUserIf) *vhost_user.CreateVhostUserIfReply {
	rv, idx := s.vhostCreate(vhostArgs{
		isServer: req.IsServer, sockFilename: req.SockFilename, renumber: req.Renumber,
		customDevInstance: req.CustomDevInstance, useCustomMac: req.UseCustomMac, mac: req.MacAddress,
		tag: req.Tag, gso: req.EnableGso, packed: req.EnablePacked,
	})
	return &vhost_user.CreateVhostUserIfReply{Retval: rv, SwIfIndex: interface_types.InterfaceIndex(idx)}
}

func hCreateVhostUserIfV2(s *Sim, _ *client, req *vhost_user.CreateVhostUserIfV2) *vhost_user.CreateVhostUserIfV2Reply {
	rv, idx := s.vhostCreate(vhostArgs{
		isServer: req.IsServer, sockFilename: req.SockFilename, renumber: req.Renumber,
		customDevInstance: req.CustomDevInstance, useCustomMac: req.UseCustomMac, mac: req.MacAddress,
		tag: req.Tag, gso: req.EnableGso, packed: req.EnablePacked, eventIdx: req.EnableEventIdx,
	})
	return &vhost_user.CreateVhostUserIfV2Reply{Retval: rv, SwIfIndex: interface_types.InterfaceIndex(idx)}
}

func hDeleteVhostUserIf(s *Sim, _ *client, req *vhost_user.DeleteVhostUserIf) *vhost_user.DeleteVhostUserIfReply {
	w := s.st
	i := w.ifaces[uint32(req.SwIfIndex)]
	if i == nil || i.vhost == nil {
		return &vhost_user.DeleteVhostUserIfReply{Retval: rvInvalidSwIfIndex}
	}
	if i.vhost.ln != nil {
		i.vhost.ln.close(true)
		i.vhost.ln = nil
	}
	w.vhostFree = append(w.vhostFree, i.vhost.devInstance)
	w.removeIface(i)
	return &vhost_user.DeleteVhostUserIfReply{}
}

func hSwInterfaceVhostUserDump(s *Sim, _ *client, req *vhost_user.SwInterfaceVhostUserDump) []*vhost_user.SwInterfaceVhostUserDetails {
	var out []*vhost_user.SwInterfaceVhostUserDetails
	for _, i := range s.st.sortedIfaces() {
		if i.vhost == nil {
			continue
		}
		if uint32(req.SwIfIndex) != invalidIndex && uint32(req.SwIfIndex) != i.swIfIndex {
			continue
		}
		d := &vhost_user.SwInterfaceVhostUserDetails{
			SwIfIndex:     interface_types.InterfaceIndex(i.swIfIndex),
			InterfaceName: i.name,
			IsServer:      i.vhost.isServer,
			SockFilename:  i.vhost.sockFilename,
		}
		if !i.vhost.isServer {
			// A client keeps trying to connect; report why it is not.
			if _, err := os.Stat(i.vhost.sockFilename); err != nil {
				d.SockErrno = int32(syscall.ENOENT)
			} else {
				d.SockErrno = int32(syscall.ECONNREFUSED)
			}
		}
		out = append(out, d)
	}
	return out
}
