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
// (`make soak DURATION=10m`); it is skipped otherwise. With
// USPACE_SOAK_DATAPLANES=real every host VPP, container VPP and SPDK in it
// is a real one (integration/realdp), read through integration/dpview, and
// the hosts' VPPs sit in network namespaces of their own joined by an
// underlay bridge; TestSoakRealBrief runs two minutes of that in `make
// test`. The soak's files: soak_test.go (the loop, the summary),
// soak_world_test.go (hosts, networks, containers), soak_ops_test.go and
// soak_faults_test.go (what a step does), soak_check_test.go,
// soak_resources_test.go and soak_traffic_test.go (what is checked after
// it).
//
// This file only holds the package documentation: the tests are the _test.go
// files here (package cluster_test). Nothing imports it.
package cluster
