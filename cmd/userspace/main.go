// Command userspace is the uspace CNI plugin (CNI type "userspace"). It
// accepts the upstream userspace CNI network config, writes intents to
// etcd and waits for the uspace host agent; the logic lives in package cni.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/uspace-io/uspace/cni"
)

func main() {
	skel.PluginMainFuncs(cni.Funcs(), version.PluginSupports(cni.SupportedVersions...), cni.About)
}
