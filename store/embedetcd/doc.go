// Package embedetcd runs a single-member etcd inside the process: in
// cmd/uspace-etcd, the child that the host agent's `--embedded-etcd` set-up
// runs, and as the tests' etcd. It is a package of its own because the etcd
// server is most of a binary: package store, which the CNI plugin, the
// volume driver, uspacectl and the agents link, must not pull it in (every
// exec would pay its package initialisation).
//
// Imports: store's and etcd's packages only; nothing but cmd/uspace-etcd
// and tests may import it.
//
// Tests: embedetcd_test.go; every test that needs an etcd uses it.
package embedetcd
