//go:build tools

// Package tools pins the etcd server, etcdctl, the host-local IPAM plugin
// and the bridge and loopback plugins (the Kubernetes test node's cluster
// network) so `make tools` builds the real binaries from this module's
// go.sum.
package tools

import (
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
