package vppsim

import (
	"go.fd.io/govpp/api"
)

// af_packet and VXLAN, as VPP 25.02's af_packet and vxlan plugins answer
// (measured side by side by integration/realdp's differential test).
const (
	rvSyscallError1Afp = int32(api.SYSCALL_ERROR_1)   // -11: af_packet_delete of a name without interface
	rvInvalidInterface = int32(api.INVALID_INTERFACE) // -71: no Linux interface of that name
	rvTunnelExist      = int32(api.TUNNEL_EXIST)      // -75
	rvSameSrcDst       = int32(api.SAME_SRC_DST)      // -82
	rvInvalidDecapNext = int32(api.INVALID_DECAP_NEXT)
	rvInstanceInUse    = int32(api.INSTANCE_IN_USE) // -147
	vxlanDefaultPort   = 4789
	vxlanDecapL2Input  = 1 // VXLAN_INPUT_NEXT_L2_INPUT; 0 is error-drop
)

// tunnels indexes the af_packet interfaces by Linux name and the VXLAN
// tunnels by key and instance. The zero value is empty.
type tunnels struct {
	afpByName map[string]*iface
	vxlanKeys map[vxlanKey]*iface
	instances map[uint32]*iface
}

func (t *tunnels) init() {
	if t.afpByName == nil {
		t.afpByName = map[string]*iface{}
		t.vxlanKeys = map[vxlanKey]*iface{}
		t.instances = map[uint32]*iface{}
	}
}

// forget drops a deleted interface from the indexes.
func (t *tunnels) forget(i *iface) {
	if i.afp != nil && t.afpByName != nil {
		delete(t.afpByName, i.afp.hostIfName)
	}
	if i.vxlan != nil && t.vxlanKeys != nil {
		delete(t.vxlanKeys, i.vxlan.key)
		delete(t.instances, i.vxlan.instance)
	}
}
