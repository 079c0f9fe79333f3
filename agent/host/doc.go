// Package host is the host agent: it watches this host's intents in etcd
// and converges the host's VPP (interfaces, bridge domains) and SPDK
// (vhost-user block devices), writing back what it applied.
//
// Files: agent.go (wiring, registration, watches, health), registration.go
// (the lease kept in the state directory, decommissioning), interfaces.go
// (the interface spec by key kind: host-side intents here, tunnels and the
// uplink by agent/reconcile/crosshost, which joins networks that span
// hosts), mtu.go (the MTU of an interface on a network that spans hosts),
// networks.go (the networks' objects, by key). Volumes
// (agent/reconcile/volumes) and the clean-up of gone containers' statuses
// (agent/reconcile/containerstatus) are wired here.
//
// It imports schema, store and the agent packages (controller,
// statuswriter, statedir, reconcile/interfaces, reconcile/crosshost,
// reconcile/containerstatus, reconcile/volumes, vppstate, vpp, spdk). It
// must not import agent/container, cni, volume, cmd, integration or store/embedetcd (only cmd/uspace-etcd links
// the etcd server), and it sets nothing process-wide: runtime knobs such as
// the memory limit are cmd/uspace-agent's, run through Config.OnStartupDone.
//
// Tests: crosshost_test.go here (tunnels derived from memberships, the
// cross-host flags); integration/hostagent (as a process and in process,
// TestInProcess*), integration/volume, integration/cni, integration/cluster,
// and on real VPP and SPDK integration/realdp.
package host
