// Package crosshost joins the host agent to networks that span hosts (a
// network with a VNI): it publishes this host's memberships
// (members/<host>/<network>, bound to the registration lease) and derives,
// from every host's memberships, the VXLAN tunnels to the peers and the
// af_packet uplink, which the interface reconcile converges
// (agent/reconcile/interfaces with Mesh.Spec). Files: crosshost.go (which
// local networks span and with which VNI; a VNI is one network's on a
// host), tunnels.go (peers checked and tunnels derived; an underlay address
// is one host's), members.go (the members watch and the membership
// reconcile).
//
// It imports agent/controller, agent/reconcile/interfaces, agent/vppstate,
// schema and store; agent/host wires it. Tests: this folder (what is
// derived), integration/cluster (three hosts on the simulator),
// integration/realdp (two real VPPs over a veth pair).
package crosshost
