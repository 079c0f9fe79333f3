package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/kube"
)

// kubePods is how many pods each side of the Kubernetes row creates.
const kubePods = 20

// kubePhase: on a real single-node Kubernetes with uspace installed from
// deployments/kubernetes/ (integration/kube), the time from a pod's
// creation to Ready with a uspace memif secondary network (Multus, the
// `userspace` plugin, the host agent on the real VPP) against the same pod
// with only the cluster network: kubePods of each, one pod at a time, the
// two kinds alternating (and which goes first alternating too) so that
// both see the same load. Skips with one line where the node cannot run.
func (b *bench) kubePhase(t *testing.T) {
	kube.Need(t)
	u := kube.StartUspace(t)
	b.res.note("Kubernetes: node up (nothing to Ready with its default ServiceAccount) in %s", u.Up.Round(100*time.Millisecond))
	kinds := []struct{ name, network string }{{"cluster", ""}, {"memif", "memif-network"}}
	// One untimed pod of each kind first: images unpacked, every binary
	// of the path in the page cache.
	for _, k := range kinds {
		kubeReady(t, u, k.name+"-warm", k.network)
	}
	lat := map[string][]time.Duration{}
	for i := range kubePods {
		for j := range kinds {
			k := kinds[(i+j)%2]
			lat[k.name] = append(lat[k.name], kubeReady(t, u, fmt.Sprintf("%s-%02d", k.name, i), k.network))
		}
	}
	u.Kubectl(t, "delete", "pods", "-l", "uspace-bench", "--wait=true", "--timeout=5m")
	plain, memif := newDist(lat["cluster"]), newDist(lat["memif"])
	b.res.floorRow("kube_pod_ready_cluster", plain, fmt.Sprintf("(Kubernetes) a pod with only the cluster network (Multus delegating "+
		"to bridge + host-local), creation to Ready as one apiserver watch saw it (ADDED, then Ready); %d pods, one at a time", kubePods))
	row := b.res.latencyRow("kube_pod_ready_memif", memif, ms(plain.pct(50)), ms(plain.pct(99)), "the same pod, cluster network only")
	row.target("p50 <= 1.3x", row.Ratio != nil && *row.Ratio <= 1.3)
	row.note("the same pod with the annotation k8s.v1.cni.cncf.io/networks: memif-network (deployments/kubernetes/), so Multus "+
		"also runs the `userspace` plugin and the host agent (the DaemonSet) makes a memif on the real VPP 25.02; %d pods, one at a "+
		"time, alternating with the cluster-only ones; a pause container each, so the figure is the network's cost, not an "+
		"application's start; kubelet reports Ready after its next relist of the runtime (generic PLEG, every second), so a "+
		"cost that does not cross into the next relist does not show", kubePods)
}

// kubeReady creates the pod bench-<name> (a pause container) on network
// besides the cluster network ("": none) and returns its creation-to-Ready
// time.
func kubeReady(t *testing.T, u *kube.Uspace, name, network string) time.Duration {
	t.Helper()
	ann := ""
	if network != "" {
		ann = fmt.Sprintf("\n  annotations: {k8s.v1.cni.cncf.io/networks: %s}", network)
	}
	pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: bench-%s
  namespace: default
  labels: {uspace-bench: %s}%s
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 5
  containers: [{name: app, image: %q, imagePullPolicy: Never}]
`, name, name, ann, kube.PauseImage)
	return u.PodsToReady(t, "uspace-bench="+name, pod, 1, 3*time.Minute)[0]
}
