//go:build tools

// Package tools pins the etcd server and etcdctl so `make tools` builds the
// real binaries from this module's go.sum.
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
