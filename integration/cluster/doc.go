// Package cluster runs uspace the way it is deployed: a 3-member etcd
// cluster (go.etcd.io/etcd/tests/v3), several simulated hosts, each with its
// own host agent process, VPP simulator and SPDK simulator, container agents
// with VPP simulators of their own, the real `userspace` CNI plugin invoked
// through libcni into network namespaces, and uspacectl. It injects faults
// (etcd members stopped, the leader killed, a host partitioned from etcd,
// agents killed mid-reconcile, compaction and defragmentation, a host
// removed) and asserts after each that every host's dataplane holds exactly
// what its intents say: nothing lost, nothing duplicated, nothing of
// another host's.
//
// Only loopback is used: a partition is a per-host TCP forwarder on
// 127.0.0.1 between that host's agent and the etcd members, which the test
// cuts and heals.
//
// TestSoak loops random operations and faults for USPACE_SOAK_DURATION
// (`make soak DURATION=10m`); it is skipped otherwise.
//
// This file only holds the package documentation: the tests are the _test.go
// files here (package cluster_test). Nothing imports it.
package cluster
