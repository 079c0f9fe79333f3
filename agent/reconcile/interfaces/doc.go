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
// It imports agent/statuswriter, agent/vpp, agent/vppstate, schema and
// store; never an agent (agent/host and agent/container import it). Its
// tests are the agents' (integration/hostagent,
// integration/containeragent, integration/cluster, integration/realdp).
package interfaces
