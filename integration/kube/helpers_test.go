package kube_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/uspace-io/uspace/integration/kube"
	"github.com/uspace-io/uspace/schema"
)

// env is the node with uspace installed, as the flows see it.
type env struct {
	*kube.Uspace
}

// networkStatus is one entry of Multus' k8s.v1.cni.cncf.io/network-status.
type networkStatus struct {
	Name      string   `json:"name"`
	Interface string   `json:"interface"`
	IPs       []string `json:"ips"`
	MAC       string   `json:"mac"`
	Default   bool     `json:"default"`
	// DeviceInfo is the NPWG device-info Multus found for the
	// attachment, if any.
	DeviceInfo json.RawMessage `json:"device-info,omitempty"`
}

// pod is what uspace holds for one pod: its container (the sandbox ID the
// CNI ADD had), meta and the host side's status of its interface net1.
type pod struct {
	Name       string
	Container  string
	Meta       schema.ContainerMeta
	HostStatus schema.InterfaceStatus
	// IP is net1's address, from the network-status annotation.
	IP string
}

// hostIfKey is the intent key of a pod's host-side interface net1.
func (p pod) hostIfKey() string { return schema.InterfaceKey(kube.NodeName, p.Container, "net1") }

func (e *env) waitReady(t *testing.T, names ...string) {
	t.Helper()
	args := []string{"wait", "--for=condition=Ready", "--timeout=180s"}
	for _, n := range names {
		args = append(args, "pod/"+n)
	}
	if _, err := e.KubectlErr(args...); err != nil {
		t.Fatalf("pods %v not Ready: %v\n%s", names, err, e.describe(names...))
	}
}

// describe is `kubectl describe pod` of the pods, for failure messages.
func (e *env) describe(names ...string) string {
	out, _ := e.KubectlErr(append([]string{"describe", "pod"}, names...)...)
	return out
}

// startVPPPods applies deployments/kubernetes/vpp-pod.yaml once per name on
// network and waits for them to be Ready.
func (e *env) startVPPPods(t *testing.T, network string, names ...string) {
	t.Helper()
	for _, n := range names {
		e.Apply(t, e.VPPPod(t, n, network))
	}
	e.waitReady(t, names...)
}

// pair starts two VPP pods on network and waits until both sides of each
// one's net1 converged: on the host a ready interface whose VPP name
// starts with ifPrefix, in the pod its container agent's ready status.
func (e *env) pair(t *testing.T, network, ifPrefix, name1, name2 string) (pod, pod) {
	t.Helper()
	e.startVPPPods(t, network, name1, name2)
	ps := []pod{e.pod(t, name1), e.pod(t, name2)}
	for _, p := range ps {
		if !p.HostStatus.Ready || !strings.HasPrefix(p.HostStatus.InterfaceName, ifPrefix) {
			t.Errorf("pod %s: host side status %+v, want a ready %s interface", p.Name, p.HostStatus, ifPrefix)
		}
		e.waitContainerReady(t, p)
	}
	return ps[0], ps[1]
}

func (e *env) deletePod(t *testing.T, name string) {
	t.Helper()
	e.Kubectl(t, "delete", "pod", name, "--wait=true", "--timeout=120s")
}

// networkStatus is a pod's network-status annotation.
func (e *env) networkStatus(t *testing.T, name string) []networkStatus {
	t.Helper()
	raw := e.Kubectl(t, "get", "pod", name, "-o", `jsonpath={.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}`)
	var st []networkStatus
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("pod %s network-status %q: %v", name, raw, err)
	}
	return st
}

// pod finds a pod's container among the node's container metas in etcd
// (by the pod name the CNI ADD recorded from CNI_ARGS) and its net1.
func (e *env) pod(t *testing.T, name string) pod {
	t.Helper()
	var found []pod
	for _, kv := range e.get(t, schema.ContainersPrefix(kube.NodeName)) {
		k, err := schema.ParseKey(string(kv.Key))
		if err != nil || k.Kind != schema.KindContainerMetaKey {
			continue
		}
		m, err := schema.DecodeAs[schema.ContainerMeta](kv.Value)
		if err != nil {
			t.Fatalf("%s: %v", kv.Key, err)
		}
		if m.PodNamespace == "default" && m.PodName == name {
			found = append(found, pod{Name: name, Container: m.Container, Meta: *m})
		}
	}
	if len(found) != 1 {
		t.Fatalf("pod %s: %d container metas in etcd, want 1: %+v", name, len(found), found)
	}
	p := found[0]
	key := schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: kube.NodeName, Container: p.Container, Interface: "net1"})
	kvs := e.get(t, key)
	if len(kvs) != 1 {
		t.Fatalf("pod %s: no status %s", name, key)
	}
	st, err := schema.DecodeAs[schema.InterfaceStatus](kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	p.HostStatus = *st
	for _, ns := range e.networkStatus(t, name) {
		if ns.Interface == "net1" && len(ns.IPs) > 0 {
			p.IP = ns.IPs[0]
		}
	}
	return p
}

// get reads the keys under prefix in uspace's etcd.
func (e *env) get(t *testing.T, prefix string) []*mvccpb.KeyValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.Store.Etcd().Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("get %s: %v", prefix, err)
	}
	return resp.Kvs
}

// containerKeys are every key of a container in etcd: intents and
// statuses.
func (e *env) containerKeys(t *testing.T, container string) []string {
	t.Helper()
	var keys []string
	for _, p := range []string{
		schema.ContainerPrefix(kube.NodeName, container),
		schema.StatusContainerPrefix(kube.NodeName, container),
		schema.InterfacesPrefix(kube.NodeName) + container + "/",
		schema.StatusHostPrefix(kube.NodeName) + "interfaces/" + container + "/",
	} {
		keys = append(keys, e.Keys(t, p)...)
	}
	return keys
}

var pingRe = regexp.MustCompile(`(\d+) sent, (\d+) received`)

// ping pings ip from the pod's own VPP (vppctl in the pod) until a reply
// comes, for up to 30 s (the first request may go to ARP).
func (e *env) ping(t *testing.T, from, ip string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := e.KubectlErr("exec", from, "--", "vppctl", "ping", ip, "repeat", "3", "interval", "0.2")
		m := pingRe.FindStringSubmatch(out)
		if err == nil && m != nil && m[2] != "0" {
			return
		}
		if time.Now().After(deadline) {
			ctr, _ := e.KubectlErr("exec", from, "--", "vppctl", "show", "interface", "addr")
			t.Fatalf("ping %s from pod %s's VPP: %v\n%s\npod's VPP interfaces:\n%s\nhost VPP:\n%s",
				ip, from, err, out, ctr, e.VPP.CLI(t, "show interface"))
		}
		time.Sleep(time.Second)
	}
}

// hostInterfaces are the host VPP's interface names.
func (e *env) hostInterfaces(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, l := range strings.Split(e.VPP.CLI(t, "show interface"), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 1 {
			if _, err := strconv.Atoi(f[1]); err == nil {
				names = append(names, f[0])
			}
		}
	}
	slices.Sort(names)
	return names
}

// ipamReserved tells whether host-local (the NADs' IPAM, default data
// directory) holds ip for network.
func ipamReserved(network, ip string) bool {
	_, err := os.Stat(filepath.Join("/var/lib/cni/networks", network, ip))
	return err == nil
}

func errIf(cond bool, format string, args ...any) error {
	if cond {
		return fmt.Errorf(format, args...)
	}
	return nil
}

// waitContainerReady waits for the pod's container agent to report net1
// applied in the pod's VPP.
func (e *env) waitContainerReady(t *testing.T, p pod) {
	t.Helper()
	key := schema.StatusKey(schema.Key{Kind: schema.KindContainerInterfaceKey, Host: kube.NodeName, Container: p.Container, Interface: "net1"})
	e.WaitFor(t, "pod "+p.Name+"'s container agent status", 3*time.Minute, func() error {
		kvs := e.get(t, key)
		if len(kvs) != 1 {
			return fmt.Errorf("no %s", key)
		}
		st, err := schema.DecodeAs[schema.InterfaceStatus](kvs[0].Value)
		if err != nil {
			return err
		}
		return errIf(!st.Ready, "%s: %+v", key, st)
	})
}

// containerIntent is the container side of a pod's net1.
func (e *env) containerIntent(t *testing.T, p pod) schema.ContainerInterface {
	t.Helper()
	kvs := e.get(t, schema.ContainerInterfaceKey(kube.NodeName, p.Container, "net1"))
	if len(kvs) != 1 {
		t.Fatalf("pod %s: no container-side intent", p.Name)
	}
	ci, err := schema.DecodeAs[schema.ContainerInterface](kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	return *ci
}

// intentKeys are a container's intents (not statuses) in etcd.
func (e *env) intentKeys(t *testing.T, container string) []string {
	t.Helper()
	return append(e.Keys(t, schema.ContainerPrefix(kube.NodeName, container)),
		e.Keys(t, schema.InterfacesPrefix(kube.NodeName)+container+"/")...)
}

// gone waits until nothing of a deleted pod is left: its host-side
// interface in VPP, its keys in etcd (intents and statuses), its address
// in host-local.
func (e *env) gone(t *testing.T, p pod, timeout time.Duration) {
	t.Helper()
	e.WaitFor(t, "pod "+p.Name+" gone from VPP, etcd and IPAM", timeout, func() error {
		// An abstract memif socket is the pod's own (its name comes from
		// the container ID) and goes with its last memif; the interface
		// name does not tell: memif<socket id>/<id>, and socket ids are
		// reused, so the next pod's memif can carry the old one's name.
		if name, ok := strings.CutPrefix(p.HostStatus.SocketPath, "@"); ok {
			if out := e.VPP.CLI(t, "show memif"); strings.Contains(out, "abstract:"+name+",") {
				return fmt.Errorf("host VPP still has memif socket %s: %s", name, out)
			}
		} else if ifs := e.hostInterfaces(t); slices.Contains(ifs, p.HostStatus.InterfaceName) {
			return fmt.Errorf("host VPP still has %s: %v", p.HostStatus.InterfaceName, ifs)
		}
		if keys := e.containerKeys(t, p.Container); len(keys) > 0 {
			return fmt.Errorf("etcd still holds %v", keys)
		}
		return errIf(ipamReserved(p.Meta.Networks["net1"], p.IP), "host-local still reserves %s", p.IP)
	})
}

// The host agent is taken off the node by a nodeSelector no node matches
// (the DaemonSet then deletes its pod) and put back by removing it.
const agentSelector = `{"spec":{"template":{"spec":{"nodeSelector":{"uspace.test/host-agent":"off"}}}}}`

func (e *env) stopHostAgent(t *testing.T) {
	t.Helper()
	e.Kubectl(t, "-n", "uspace-system", "patch", "ds", "uspace-host-agent", "--type=merge", "-p", agentSelector)
	e.WaitFor(t, "the host agent's pod gone and its registration released", 2*time.Minute, func() error {
		out, err := e.KubectlErr("-n", "uspace-system", "get", "pods", "-o", "name")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "" {
			return fmt.Errorf("pods left: %s", out)
		}
		return errIf(len(e.Keys(t, schema.AgentKey(kube.NodeName))) > 0, "agent still registered")
	})
}

func (e *env) startHostAgent(t *testing.T) {
	t.Helper()
	e.Kubectl(t, "-n", "uspace-system", "patch", "ds", "uspace-host-agent", "--type=json",
		"-p", `[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]`)
	e.WaitHostAgent(t)
}

// deviceInfoDir is where vpp-pod.yaml mounts its device-info emptyDir
// (USPACE_DEVICE_INFO_DIR).
const deviceInfoDir = "/run/uspace/devices"

// deviceInfo is the device-info file of a pod's interface in its
// device-info emptyDir, read on the node (the pod's image has no cat).
func (e *env) deviceInfo(t *testing.T, p pod, ifname string) []byte {
	t.Helper()
	path := filepath.Join(e.Dir, "var", "kubelet", "pods", p.Meta.PodUID, "volumes", "kubernetes.io~empty-dir", "device-info", ifname+".json")
	var b []byte
	e.WaitFor(t, "pod "+p.Name+"'s device-info file "+ifname+".json", time.Minute, func() error {
		var err error
		b, err = os.ReadFile(path)
		return err
	})
	return b
}

// noHostMountNoCredential checks that a pod mounts nothing of the node and
// holds no etcd setting or Secret: its container agent has no way to etcd
// but its endpoint.
func (e *env) noHostMountNoCredential(t *testing.T, name string) {
	t.Helper()
	var p corev1.Pod
	if err := json.Unmarshal([]byte(e.Kubectl(t, "get", "pod", name, "-o", "json")), &p); err != nil {
		t.Fatalf("pod %s: %v", name, err)
	}
	for _, v := range p.Spec.Volumes {
		if v.HostPath != nil || v.Secret != nil || v.Projected != nil {
			t.Errorf("pod %s: volume %s mounts a host path or a secret: %+v", name, v.Name, v.VolumeSource)
		}
	}
	for _, c := range p.Spec.Containers {
		for _, env := range c.Env {
			if strings.HasPrefix(env.Name, "USPACE_ETCD_") {
				t.Errorf("pod %s, container %s: etcd setting %s", name, c.Name, env.Name)
			}
		}
		if len(c.EnvFrom) > 0 {
			t.Errorf("pod %s, container %s: environment from %+v", name, c.Name, c.EnvFrom)
		}
	}
}

// put writes o at key in uspace's etcd, as the admin.
func (e *env) put(t *testing.T, key string, o schema.Object) {
	t.Helper()
	b, err := schema.Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	e.putRaw(t, key, b)
}

func (e *env) putRaw(t *testing.T, key string, value []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.Store.Etcd().Put(ctx, key, string(value)); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// endpointOpened tells whether the host agent's log says it opened the
// endpoint of container.
func endpointOpened(logs, container string) bool {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `msg="endpoint open"`) && strings.Contains(l, " container="+container+" ") {
			return true
		}
	}
	return false
}
