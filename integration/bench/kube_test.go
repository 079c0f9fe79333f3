package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/kube"
)

// kubePods is how many pods each side of the Kubernetes row creates at
// once.
const kubePods = 20

// kubePhase: on a real single-node Kubernetes with uspace installed from
// deployments/kubernetes/ (integration/kube), the time from a pod's
// creation to Ready, for kubePods pods created at once with a uspace memif
// secondary network (Multus, the `userspace` plugin, the host agent on the
// real VPP) against the same pods with only the cluster network. Skips
// with one line where the node cannot run.
func (b *bench) kubePhase(t *testing.T) {
	kube.Need(t)
	u := kube.StartUspace(t)
	b.res.note("Kubernetes: node up (nothing to Ready with its default ServiceAccount) in %s", u.Up.Round(100*time.Millisecond))
	// One untimed pod of each kind first: images unpacked, every binary
	// of the path in the page cache.
	for _, net := range []string{"", "memif-network"} {
		kubeReady(t, u, "warm", net, 1)
	}
	plain := newDist(kubeReady(t, u, "cluster", "", kubePods))
	memif := newDist(kubeReady(t, u, "memif", "memif-network", kubePods))
	b.res.floorRow("kube_pod_ready_cluster", plain, fmt.Sprintf("(Kubernetes) %d pods created at once, cluster network only "+
		"(Multus delegating to bridge + host-local): creation to Ready as one apiserver watch saw them (ADDED, then Ready)", kubePods))
	row := b.res.latencyRow("kube_pod_ready_memif", memif, ms(plain.pct(50)), ms(plain.pct(99)), "the same pods, cluster network only")
	row.target("p50 <= 1.3x", row.Ratio != nil && *row.Ratio <= 1.3)
	row.note("the same %d pods with the annotation k8s.v1.cni.cncf.io/networks: memif-network (deployments/kubernetes/), so "+
		"Multus also runs the `userspace` plugin and the host agent (the DaemonSet) makes a memif on the real VPP 25.02; "+
		"a pause container each, so the figure is the network's cost, not an application's start", kubePods)
}

// kubeReady creates count pods labelled uspace-bench=kind, on network
// besides the cluster network ("": none), returns their creation-to-Ready
// times and deletes them.
func kubeReady(t *testing.T, u *kube.Uspace, kind, network string, count int) []time.Duration {
	t.Helper()
	var docs []string
	for i := range count {
		ann := ""
		if network != "" {
			ann = fmt.Sprintf("\n  annotations: {k8s.v1.cni.cncf.io/networks: %s}", network)
		}
		docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: bench-%s-%02d
  namespace: default
  labels: {uspace-bench: %s}%s
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 5
  containers: [{name: app, image: %q, imagePullPolicy: Never}]
`, kind, i, kind, ann, kube.PauseImage))
	}
	lat := u.PodsToReady(t, "uspace-bench="+kind, strings.Join(docs, "---\n"), count, 5*time.Minute)
	u.Kubectl(t, "delete", "pods", "-l", "uspace-bench="+kind, "--wait=true", "--timeout=3m")
	return lat
}
