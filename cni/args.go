package cni

import (
	"strings"
)

// PodArgs is what the plugin reads from CNI_ARGS.
type PodArgs struct {
	Namespace string
	Name      string
	UID       string
	// InfraContainerID is K8S_POD_INFRA_CONTAINER_ID (Multus, kubelet).
	InfraContainerID string
	// MAC is an explicit MAC for the container side (MAC=..., Multus).
	MAC string
}

// maxArgValue bounds what is copied from CNI_ARGS into etcd.
const maxArgValue = 253

// ParseArgs reads CNI_ARGS (`K=V;K=V`) tolerantly: unknown keys are
// ignored whether or not IgnoreUnknown is set (this plugin never fails on
// them); pairs without "=" are skipped; a key that appears more than once
// (normal under Multus, which adds its own K8S_POD_* before kubelet's) takes
// its first non-empty value. Keys match case-sensitively, as the CNI
// convention and kubelet spell them.
func ParseArgs(s string) PodArgs {
	var a PodArgs
	for _, pair := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if v == "" || len(v) > maxArgValue {
			continue
		}
		var dst *string
		switch k {
		case "K8S_POD_NAMESPACE":
			dst = &a.Namespace
		case "K8S_POD_NAME":
			dst = &a.Name
		case "K8S_POD_UID":
			dst = &a.UID
		case "K8S_POD_INFRA_CONTAINER_ID":
			dst = &a.InfraContainerID
		case "MAC":
			dst = &a.MAC
		default:
			continue
		}
		if *dst == "" {
			*dst = v
		}
	}
	return a
}
