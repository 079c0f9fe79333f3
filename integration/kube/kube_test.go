package kube_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/deviceinfo"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/kube"
)

func TestMain(m *testing.M) { os.Exit(harness.RunIsolated(m)) }

// TestKubernetes runs uspace on a real node, installed from
// deployments/kubernetes/ as a user would, and each flow of a Kubernetes
// user on it. The flows share the node (bringing it up is most of the
// time) and run in order: the restarts check pods the first flow made.
func TestKubernetes(t *testing.T) {
	began := time.Now()
	e := &env{Uspace: kube.StartUspace(t)}
	t.Logf("node up in %s; uspace installed after %s", e.Up.Round(100*time.Millisecond), time.Since(began).Round(100*time.Millisecond))
	t.Run("memif pods ping through the host VPP", e.memifPing)
	t.Run("network-status lists the uspace interface", e.networkStatusFlow)
	t.Run("pod delete removes interfaces, intents and IPAM", e.podDelete)
	t.Run("pod delete while the host agent is down converges", e.podDeleteAgentDown)
	t.Run("kubelet restart keeps the pods' interfaces", e.restartKeepsPods(e.restartKubelet))
	t.Run("containerd restart keeps the pods' interfaces", e.restartKeepsPods(e.restartContainerd))
	t.Run("host agent pod restart adopts the pods' interfaces", e.restartKeepsPods(e.restartHostAgent))
	t.Run("after a host agent pod restart the pods' agents converge through re-opened endpoints", e.endpointsReopened)
	t.Run("a pod's sandbox re-created", e.sandboxRecreated)
	t.Run("a bad NAD fails the pod with the plugin's error and leaves nothing", e.badNADFails)
	t.Run("vhost-user NAD without Kata", e.vhostWithoutKata)
	t.Run("a volume without Kata", e.volumeWithoutKata)
	t.Logf("tier took %s", time.Since(began).Round(time.Second))
}

// memifPing: two VPP pods on the memif NAD, from vpp-pod.yaml as it is:
// no hostPath, no Secret, no etcd setting. Each one's container agent
// reaches etcd only through the endpoint the host agent opened in its
// pod's network namespace, finds its pod by POD_NAMESPACE/POD_NAME,
// converges its VPP (its ready status, which it can write nowhere else,
// proves the endpoint) and keeps net1's device-info in the pod's emptyDir;
// the memif sockets are abstract sockets in the pods' namespaces; the pods
// ping each other through the host VPP's bridge domain.
func (e *env) memifPing(t *testing.T) {
	a, b := e.pair(t, "memif-network", "memif", "vpp-a", "vpp-b")
	agentLogs := e.Kubectl(t, "-n", "uspace-system", "logs", "-l", "app.kubernetes.io/name=uspace-host-agent", "--tail=-1")
	for _, p := range []pod{a, b} {
		e.noHostMountNoCredential(t, p.Name)
		if p.Meta.PodUID == "" {
			t.Errorf("pod %s: meta without the pod UID from CNI_ARGS: %+v", p.Name, p.Meta)
		}
		if !strings.HasPrefix(p.Meta.Netns, e.NetnsDir+"/") {
			t.Errorf("pod %s: meta's netns %q, want one of containerd's under %s", p.Name, p.Meta.Netns, e.NetnsDir)
		}
		if !endpointOpened(agentLogs, p.Container) {
			t.Errorf("the host agent's log has not opened the endpoint of %s:\n%s", p.Container, agentLogs)
		}
		logs := e.Kubectl(t, "logs", p.Name)
		if want := `by="pod default/` + p.Name + `"`; !strings.Contains(logs, want) {
			t.Errorf("pod %s's container agent did not identify itself %s:\n%s", p.Name, want, logs)
		}
		ci := e.containerIntent(t, p)
		if ci.Memif == nil || !strings.HasPrefix(ci.Memif.SocketPath, "@") {
			t.Errorf("pod %s: container-side memif %+v, want an abstract socket (@name)", p.Name, ci.Memif)
		}
		info := e.deviceInfo(t, p, "net1")
		t.Logf("pod %s: %s/net1.json in its emptyDir: %s", p.Name, deviceInfoDir, info)
		var di deviceinfo.Info
		if err := json.Unmarshal(info, &di); err != nil || di.Type != "memif" || di.Memif == nil ||
			di.Memif.Role != "slave" || ci.Memif == nil || di.Memif.Path != ci.Memif.SocketPath {
			t.Errorf("pod %s: device-info %s (%v), want memif, role slave, path %+v", p.Name, info, err, ci.Memif)
		}
	}
	e.ping(t, "vpp-a", b.IP)
	e.ping(t, "vpp-b", a.IP)
}

// networkStatusFlow: Multus' network-status annotation lists net1 from
// the memif network with the address and MAC uspace's result gave. Multus
// v4.2.2 puts a device-info into it only for a device-plugin resource
// (deviceID), which a memif network has not: net1 carries none, and the
// result's socketPath has no field there; the app finds its socket in the
// agent's device-info file instead (memifPing).
func (e *env) networkStatusFlow(t *testing.T) {
	p := e.pod(t, "vpp-a")
	raw := e.Kubectl(t, "get", "pod", "vpp-a", "-o", `jsonpath={.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}`)
	t.Logf("vpp-a's k8s.v1.cni.cncf.io/network-status: %s", raw)
	var net1 *networkStatus
	for _, ns := range e.networkStatus(t, "vpp-a") {
		if ns.Interface == "net1" {
			net1 = &ns
		}
	}
	if net1 == nil {
		t.Fatalf("network-status of vpp-a has no net1: %+v", e.networkStatus(t, "vpp-a"))
	}
	if net1.Name != "default/memif-network" || len(net1.IPs) != 1 || !strings.HasPrefix(net1.IPs[0], "10.56.217.") || net1.MAC == "" {
		t.Errorf("net1 in network-status: %+v, want default/memif-network with one address of 10.56.217.0/24 and a MAC", *net1)
	}
	if net1.DeviceInfo != nil {
		t.Errorf("net1 in network-status has a device-info, which Multus v4.2.2 gives only device-plugin resources: %s", net1.DeviceInfo)
	}
	ci := e.containerIntent(t, p)
	if ci.MAC != net1.MAC || len(ci.IPs) != 1 || !strings.HasPrefix(ci.IPs[0].Address, net1.IPs[0]+"/") {
		t.Errorf("network-status net1 %+v differs from the container-side intent %+v", *net1, ci)
	}
}

// podDelete: deleting a pod removes its host-side interface from VPP, its
// intents and statuses from etcd and its address from host-local.
func (e *env) podDelete(t *testing.T) {
	e.startVPPPods(t, "memif-network", "vpp-c")
	c := e.pod(t, "vpp-c")
	if !ipamReserved("memif-network", c.IP) {
		t.Fatalf("no host-local reservation of %s for vpp-c", c.IP)
	}
	if !slices.Contains(e.hostInterfaces(t), c.HostStatus.InterfaceName) {
		t.Fatalf("host VPP lacks vpp-c's %s: %v", c.HostStatus.InterfaceName, e.hostInterfaces(t))
	}
	e.deletePod(t, "vpp-c")
	e.gone(t, c, time.Minute)
}

// podDeleteAgentDown: a pod deleted while the host agent is down loses
// its intents and address at once (CNI DEL needs only etcd); its VPP
// interface goes when the agent is back.
func (e *env) podDeleteAgentDown(t *testing.T) {
	e.startVPPPods(t, "memif-network", "vpp-d")
	d := e.pod(t, "vpp-d")
	e.stopHostAgent(t)
	e.deletePod(t, "vpp-d")
	if keys := e.intentKeys(t, d.Container); len(keys) > 0 {
		t.Errorf("intents of deleted pod vpp-d left in etcd while the agent is down: %v", keys)
	}
	if ipamReserved("memif-network", d.IP) {
		t.Errorf("host-local still reserves %s of deleted pod vpp-d", d.IP)
	}
	if !slices.Contains(e.hostInterfaces(t), d.HostStatus.InterfaceName) {
		t.Errorf("host VPP lost vpp-d's %s with no agent running: %v", d.HostStatus.InterfaceName, e.hostInterfaces(t))
	}
	e.startHostAgent(t)
	e.gone(t, d, time.Minute)
}

// vhostWithoutKata: two VPP pods on the vhost-user NAD, as a user
// without Kata gets them. Both sides converge: the host VPP is the
// vhost-user client of a socket each pod's VPP serves in the shared
// directory, and it connects. But VPP is a vhost-user back-end at both
// ends: neither offers features or memory to the other, so no frame
// flows and the pods cannot ping. Traffic needs a virtio front-end on the
// pod's end of the socket: QEMU in a Kata VM (its guest then has a
// virtio-net device), or a DPDK virtio-user application in the pod.
func (e *env) vhostWithoutKata(t *testing.T) {
	a, b := e.pair(t, "vhost-network", "VirtualEthernet", "vhost-a", "vhost-b")
	for _, p := range []pod{a, b} {
		sock := p.HostStatus.SocketPath
		if sock == "" {
			t.Fatalf("pod %s: host side status names no socket: %+v", p.Name, p.HostStatus)
		}
		e.WaitFor(t, "the host VPP connected to pod "+p.Name+"'s socket", time.Minute, func() error {
			host := e.VPP.CLI(t, "show vhost-user")
			return errIf(!strings.Contains(host, sock+` type client errno "Success"`), "host VPP:\n%s", host)
		})
		ctr := e.Kubectl(t, "exec", p.Name, "--", "vppctl", "show", "vhost-user")
		for _, want := range []string{sock + ` type server errno "Success"`, "features (0x0)", "Memory regions (total 0)"} {
			if !strings.Contains(ctr, want) {
				t.Errorf("pod %s's VPP: no %q:\n%s", p.Name, want, ctr)
			}
		}
	}
	out, _ := e.KubectlErr("exec", "vhost-a", "--", "vppctl", "ping", b.IP, "repeat", "3", "interval", "0.2")
	if m := pingRe.FindStringSubmatch(out); m == nil || m[2] != "0" {
		t.Errorf("vhost-a pinged %s through two vhost-user back-ends; the documentation says it cannot:\n%s", b.IP, out)
	}
	for _, p := range []pod{a, b} {
		e.deletePod(t, p.Name)
		e.gone(t, p, time.Minute)
	}
}
