//go:build tools

// Package tools pins the etcd server, etcdctl and the host-local IPAM
// plugin so `make tools` builds the real binaries from this module's go.sum.
package tools

import (
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
