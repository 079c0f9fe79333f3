// Package hostagent drives the real host agent process against real
// etcd and the VPP/SPDK simulators, asserting dataplane state and statuses.
//
// This file only holds the package documentation: the tests are the _test.go
// files here (package hostagent_test; TestInProcess* run the agent in the
// test process, under the race detector in make test). Nothing imports it.
package hostagent
