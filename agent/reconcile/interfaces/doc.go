// Package interfaces is the interface reconcile both agents run: one key
// (an interface intent, or what the host agent derives: a VXLAN tunnel, its
// uplink) -> a spec, by the agent's own SpecFunc -> vppstate -> the status
// the key's status key holds. Two more keys share its worker: the sweep
// (orphans out, what VPP lacks created in bulk) and drift (what someone
// else changed in VPP).
//
// A failure's status says `retrying` when store.Classify calls it
// transient (VPP not connected, a deadline, a broken connection) or VPP
// went away meanwhile; anything else is final for the intent's revision.
//
// Ownership of what VPP knows by what it is rather than by uspace's tag
// (an af_packet's Linux interface, a VXLAN tunnel's endpoints and VNI): the
// key's status records the create before it is made
// (InterfaceStatus.Creating), the one proof that an untagged such object,
// left by a crash between create and tag, is this agent's; any other
// object holding the identity is refused (vppstate.ForeignError), never
// changed or deleted. A spec error marked Withdrawn also removes what the
// key had in VPP.
//
// It imports agent/statuswriter, agent/vpp, agent/vppstate, schema and
// store; never an agent package (agent/host and agent/container import
// it). Its tests are the agents' (integration/hostagent,
// integration/containeragent, integration/cluster, integration/realdp).
package interfaces
