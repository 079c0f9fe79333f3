package kube_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/kube"
	"github.com/uspace-io/uspace/schema"
)

// badNAD is a NetworkAttachmentDefinition the plugin refuses: the
// upstream memif config of deployments/kubernetes/ with one field wrong.
func badNAD(name, host string) string {
	return fmt.Sprintf(`apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: %s, namespace: default}
spec:
  config: '{"cniVersion":"1.0.0","type":"userspace","name":"%s",
    "host":{%s},
    "container":{"engine":"vpp","iftype":"memif","netType":"interface","memif":{"role":"slave","mode":"ethernet"}},
    "ipam":{"type":"host-local","subnet":"10.56.219.0/24"}}'
`, name, name, host)
}

// badNADFails: a pod on a NAD the plugin refuses never starts; its events
// (kubectl describe) carry the plugin's error; once the pod is deleted
// nothing of it is left: no intent or status in etcd, no VPP interface or
// bridge domain, no address in host-local. Two ways to be bad: a config
// the plugin refuses before anything is done (an engine uspace does not
// support), and one it accepts but VPP refuses (a bridge domain ID over
// VPP's maximum), after IPAM and the intents were written.
func (e *env) badNADFails(t *testing.T) {
	for _, c := range []struct{ nad, host, want string }{
		{"bad-engine", `"engine":"ovs-dpdk","iftype":"memif","netType":"bridge","memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeName":"5"}`,
			"not supported by uspace"},
		{"bad-bridge", `"engine":"vpp","iftype":"memif","netType":"bridge","memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeName":"16777216"}`,
			"16777216"},
	} {
		t.Run(c.nad, func(t *testing.T) {
			ifs, bds := e.hostInterfaces(t), e.VPP.CLI(t, "show bridge-domain")
			e.Apply(t, badNAD(c.nad, c.host))
			name := "pod-" + c.nad
			e.Apply(t, e.VPPPod(t, name, c.nad))
			var msg string
			e.WaitFor(t, "the sandbox failure event of "+name, 2*time.Minute, func() error {
				out, err := e.KubectlErr("get", "events", "--field-selector", "involvedObject.name="+name+",reason=FailedCreatePodSandBox",
					"-o", "jsonpath={.items[*].message}")
				msg = out
				return errIf(err != nil || out == "", "no FailedCreatePodSandBox event yet (%v)", err)
			})
			t.Logf("pod %s: FailedCreatePodSandBox: %s", name, msg)
			if !strings.Contains(msg, c.want) {
				t.Errorf("pod %s's sandbox failed without the plugin's error (%q): %s", name, c.want, msg)
			}
			if d := e.describe(name); !strings.Contains(d, c.want) {
				t.Errorf("kubectl describe pod %s lacks the plugin's error %q:\n%s", name, c.want, d)
			}
			e.deletePod(t, name)
			e.WaitFor(t, "nothing left of "+name, time.Minute, func() error {
				if m := e.metasOf(t, name); len(m) > 0 {
					return fmt.Errorf("container metas in etcd: %v", m)
				}
				if now := e.hostInterfaces(t); !slices.Equal(now, ifs) {
					return fmt.Errorf("host VPP interfaces %v, before the pod %v", now, ifs)
				}
				if now := e.VPP.CLI(t, "show bridge-domain"); now != bds {
					return fmt.Errorf("host VPP bridge domains:\n%s\nbefore the pod:\n%s", now, bds)
				}
				return errIf(len(reservations(c.nad)) > 0, "host-local reserves %v", reservations(c.nad))
			})
			e.Kubectl(t, "delete", "network-attachment-definitions", c.nad)
		})
	}
}

// metasOf are the container meta keys recorded for a pod name.
func (e *env) metasOf(t *testing.T, name string) []string {
	t.Helper()
	var keys []string
	for _, kv := range e.get(t, schema.ContainersPrefix(kube.NodeName)) {
		if m, err := schema.DecodeAs[schema.ContainerMeta](kv.Value); err == nil && m.PodName == name {
			keys = append(keys, string(kv.Key))
		}
	}
	return keys
}

// reservations are the addresses host-local holds for network (its files
// named by address; lock and last_reserved_ip* are its own).
func reservations(network string) []string {
	ents, _ := os.ReadDir(filepath.Join("/var/lib/cni/networks", network))
	var ips []string
	for _, e := range ents {
		if n := e.Name(); n != "lock" && !strings.HasPrefix(n, "last_reserved_ip") {
			ips = append(ips, n)
		}
	}
	return ips
}
