// Package volume drives the real uspace-volume process over its real
// plugin socket, as Docker does, and through the real docker CLI, against a
// real etcd, the real host agent process and the SPDK simulator.
//
// This file only holds the package documentation: the tests are the _test.go
// files here (package volume_test). Nothing imports it.
package volume
