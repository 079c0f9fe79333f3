// Package embedetcd runs a single-member etcd inside the process: the host
// agent's `--embedded-etcd` set-up and the tests' etcd. It is a package of
// its own because the etcd server is most of a binary: package store, which
// the CNI plugin, the volume driver and uspacectl link, must not pull it in
// (every exec of the plugin would pay its package initialisation).
//
// Imports: store's and etcd's packages only; nothing but cmd/uspace-agent
// and tests may import it.
//
// Tests: embedetcd_test.go; every test that needs an etcd uses it.
package embedetcd
