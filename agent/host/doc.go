// Package host is the host agent: it watches this host's intents in etcd
// and converges the host's VPP (interfaces, bridge domains) and SPDK
// (vhost-user block devices), writing back what it applied.
//
// Files: agent.go (wiring, registration, watches, health), registration.go
// (the lease kept in the state directory, decommissioning), interfaces.go
// (the host-side interface spec), volumes.go (SPDK bdev and controller,
// socket, device node), spdkwatch.go (SPDK's connection and the volume drift
// check), crosshost.go (networks that span hosts: memberships published and
// watched, the VXLAN tunnels and uplink derived from them).
//
// It imports schema, store and the agent packages (controller,
// statuswriter, statedir, reconcile/interfaces, vppstate, vpp, spdk). It
// must not import agent/container, cni, volume, cmd, integration or store/embedetcd (only cmd/uspace-agent links
// the etcd server), and it sets nothing process-wide: runtime knobs such as
// the memory limit are cmd/uspace-agent's, run through Config.OnStartupDone.
//
// Tests: integration/hostagent (as a process and in process,
// TestInProcess*), integration/volume, integration/cni, integration/cluster,
// and on real VPP and SPDK integration/realdp.
package host
