// Package container is the container agent: it runs beside a container's
// own VPP, watches that container's intents in etcd and converges the
// container side of each interface, writing back what it applied. It
// replaces vpp-app, which polled JSON files in a bind-mounted directory.
//
// It imports schema, store and the shared agent packages (controller,
// statuswriter, reconcile/interfaces, vppstate, vpp). It must not import agent/host,
// agent/spdk, cni, volume, cmd, integration or store/embedetcd, and it sets
// nothing process-wide: logger and etcd client are handed in, and it serves
// no HTTP endpoint, so it builds no metrics.
//
// Tests: identity_test.go here (container identity discovery); the agent
// itself in integration/containeragent, as a process and in process
// (TestInProcess*), and end to end in integration/cni and
// integration/cluster.
package container
