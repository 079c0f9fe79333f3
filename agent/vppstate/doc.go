// Package vppstate is the agents' view of what a VPP holds and the one way
// they change it: load it with dumps, converge one tagged interface to a
// spec (state.go) with its bridge domain (bridges.go), memif socket
// (sockets.go) and routes (routes.go), make VXLAN tunnels and af_packet
// uplinks (crosshost.go: one that VPP holds already and that is not tagged
// for the spec's owner is refused, never taken, changed or deleted; Adopt
// takes an untagged one on the caller's proof that it made it), remove
// one, find orphans (cache.go), notice
// drift (drift.go), create in bulk what VPP lacks (bulk.go). Both the host
// and the container agent use it; a single reconcile worker per agent owns
// a State, so the view only changes through it between loads.
//
// It imports agent/vpp and schema only: it knows nothing of etcd, of
// statuses or of which agent runs it. Its behaviour is tested through the
// agents (integration/hostagent, integration/containeragent, the cluster
// and real-dataplane tiers), which drive it against the VPP simulator and
// a real VPP 25.02.
package vppstate
