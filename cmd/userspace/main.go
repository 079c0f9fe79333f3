package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/uspace-io/uspace/cni"
)

func main() {
	skel.PluginMainFuncs(cni.Funcs(), version.PluginSupports(cni.SupportedVersions...), cni.About)
}
