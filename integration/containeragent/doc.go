// Package containeragent runs the real container agent process against
// real etcd and a VPP simulator of its own.
//
// This file only holds the package documentation: the tests are the _test.go
// files here (package containeragent_test; TestInProcess* run the agent in
// the test process, under the race detector in make test). Nothing imports
// it.
package containeragent
