package kube

import (
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// The node's configuration files, rendered into its directory. The
// comments say why a setting differs from a default (traps of
// ../shared/kubernetes/README.md).

// containerdConfig: an instance of its own beside Docker's (root, state,
// socket), the CNI of its own, the local pause image.
const containerdConfig = `version = 2
root = "{{.Dir}}/var/containerd"
state = "{{.Dir}}/run/containerd"
# Snapshotters and tracing that fail to load here, and nothing the CRI needs.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{{.Dir}}/run/containerd/containerd.sock"
[ttrpc]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.PauseImage}}"
  # Network namespaces in /var/run/netns, the default: under the state
  # directory their paths grow too long for a memif socket in them (VPP
  # keeps 107 bytes of "abstract:<name>,netns_name=<path>").
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  # Root here lacks CAP_SYS_RESOURCE: runc cannot give pause its
  # oom_score_adj of -998 ("can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{{.Runc}}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{{.Dir}}/cni/bin"
    conf_dir = "{{.Dir}}/cni/net.d"
    max_conf_num = 1
`

// kubeletConfig: cgroup v1 with cgroupfs under the node's own cgroup
// (host.go, makeCgroup), no swap check, webhook authn/z
// for the apiserver's exec/logs, eviction and image GC thresholds a nearly
// full shared disk does not cross, and kubelet kept out of the host's
// iptables.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://{{.Dir}}/run/containerd/containerd.sock
imageServiceEndpoint: unix://{{.Dir}}/run/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: {{.PodCgroup}}
failSwapOn: false
failCgroupV1: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: {{.Dir}}/pki/ca.crt}
authorization:
  mode: Webhook
address: {{.IP}}
port: 10250
readOnlyPort: 0
healthzBindAddress: {{.IP}}
healthzPort: 10248
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podLogsDir: {{.Dir}}/var/log/pods
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
nodeStatusReportFrequency: 10s
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
fileCheckFrequency: 5s
makeIPTablesUtilChains: false
volumePluginDir: {{.Dir}}/var/kubelet-plugins
`

// multusConfig: Multus thin plugin as the only network config, delegating
// the cluster network to bridge + host-local. Its binDir is the CNI bin
// dir of deployments/kubernetes/ (where the DaemonSet's installer puts
// `userspace`); containerd's own bin dir, which holds the delegates, comes
// after it in CNI_PATH.
const multusConfig = `{
  "cniVersion": "1.0.0",
  "name": "multus-cni-network",
  "type": "multus",
  "kubeconfig": "{{.Dir}}/kubeconfig/multus.kubeconfig",
  "cniDir": "{{.Dir}}/var/cni/multus",
  "binDir": "{{.CNIBinDir}}",
  "confDir": "{{.Dir}}/cni/net.d",
  "logFile": "{{.Dir}}/log/multus.log",
  "logLevel": "verbose",
  "delegates": [{
    "cniVersion": "1.0.0",
    "name": "uskube-pods",
    "plugins": [{
      "type": "bridge",
      "bridge": "{{.PodBridge}}",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "{{.Dir}}/var/cni/networks",
        "ranges": [[{"subnet": "{{.PodCIDR}}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }]
  }]
}
`

// render writes a template filled from n into path.
func (n *Node) render(path, tmpl string) error {
	var b strings.Builder
	if err := template.Must(template.New(filepath.Base(path)).Parse(tmpl)).Execute(&b, n); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
