// Package cni runs the built `userspace` CNI plugin the way runtimes
// do, through libcni, into network namespaces made for each test, against a
// real etcd and a real host agent driving vppsim (integration/harness).
//
// This file only holds the package documentation: the tests are the _test.go
// files here (package cni_test). Nothing imports it.
package cni
