package kubernetes_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/uspace-io/uspace/cni"
	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/deployments/internal/helpcheck"
)

func TestMain(m *testing.M) {
	code := m.Run()
	helpcheck.Cleanup()
	os.Exit(code)
}

// nad mirrors the NetworkAttachmentDefinition CRD
// (k8s.cni.cncf.io/v1, network-attachment-definition-client).
type nad struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Config string `json:"config"`
	} `json:"spec"`
}

// manifests is everything under deployments/kubernetes/, by kind and
// namespace/name.
type manifests struct {
	namespaces      map[string]*corev1.Namespace
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	serviceAccounts map[string]*corev1.ServiceAccount
	daemonSets      map[string]*appsv1.DaemonSet
	pods            map[string]*corev1.Pod
	nads            map[string]*nad
}

var apiVersions = map[string]string{
	"Namespace": "v1", "ConfigMap": "v1", "Secret": "v1", "ServiceAccount": "v1", "Pod": "v1",
	"DaemonSet": "apps/v1", "NetworkAttachmentDefinition": "k8s.cni.cncf.io/v1",
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{
		namespaces: map[string]*corev1.Namespace{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, serviceAccounts: map[string]*corev1.ServiceAccount{},
		daemonSets: map[string]*appsv1.DaemonSet{}, pods: map[string]*corev1.Pod{}, nads: map[string]*nad{},
	}
	files, err := filepath.Glob(filepath.Join(helpcheck.Root(), "deployments", "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deployments/kubernetes (%v)", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSep.Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s document %d", filepath.Base(f), i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if want, ok := apiVersions[tm.Kind]; !ok {
				t.Fatalf("%s: kind %q is not one this test knows", where, tm.Kind)
			} else if tm.APIVersion != want {
				t.Fatalf("%s: %s has apiVersion %q, want %q", where, tm.Kind, tm.APIVersion, want)
			}
			var obj interface{ GetName() string }
			switch tm.Kind {
			case "Namespace":
				obj = &corev1.Namespace{}
			case "ConfigMap":
				obj = &corev1.ConfigMap{}
			case "Secret":
				obj = &corev1.Secret{}
			case "ServiceAccount":
				obj = &corev1.ServiceAccount{}
			case "DaemonSet":
				obj = &appsv1.DaemonSet{}
			case "Pod":
				obj = &corev1.Pod{}
			case "NetworkAttachmentDefinition":
				obj = &nad{}
			}
			// Strict: unknown and duplicate fields are errors.
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s (%s): %v", where, tm.Kind, err)
			}
			ns := ""
			if o, ok := obj.(interface{ GetNamespace() string }); ok {
				ns = o.GetNamespace()
			}
			if obj.GetName() == "" {
				t.Fatalf("%s: %s without a name", where, tm.Kind)
			}
			if tm.Kind != "Namespace" && ns == "" {
				t.Errorf("%s: %s %s names no namespace: say which one", where, tm.Kind, obj.GetName())
			}
			key := ns + "/" + obj.GetName()
			switch o := obj.(type) {
			case *corev1.Namespace:
				m.namespaces[o.Name] = o
			case *corev1.ConfigMap:
				m.configMaps[key] = o
			case *corev1.Secret:
				m.secrets[key] = o
			case *corev1.ServiceAccount:
				m.serviceAccounts[key] = o
			case *appsv1.DaemonSet:
				m.daemonSets[key] = o
			case *corev1.Pod:
				m.pods[key] = o
			case *nad:
				m.nads[key] = o
			}
		}
	}
	return m
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// program is one process of an image's entrypoint with its --help.
type program struct {
	name string
	help helpcheck.Help
}

// imageEntrypoint reads deployments/images/<image>/Dockerfile's ENTRYPOINT
// and returns the programs it runs; the container's args go to the last.
// The images are referenced as uspace/<image>:<tag>.
func imageEntrypoint(t *testing.T, ref string) []program {
	t.Helper()
	repo, _, _ := strings.Cut(ref, ":")
	name, ok := strings.CutPrefix(repo, "uspace/")
	if !ok {
		t.Fatalf("image %s: uspace's images are uspace/<name> (deployments/images/build.sh)", ref)
	}
	data, err := os.ReadFile(filepath.Join(helpcheck.Root(), "deployments", "images", name, "Dockerfile"))
	if err != nil {
		t.Fatalf("image %s: no deployments/images/%s/Dockerfile: %v", ref, name, err)
	}
	var entry []string
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "ENTRYPOINT "); ok {
			if err := json.Unmarshal([]byte(rest), &entry); err != nil {
				t.Fatalf("%s Dockerfile: ENTRYPOINT is not an exec-form list: %v", name, err)
			}
		}
	}
	if len(entry) == 0 {
		t.Fatalf("%s Dockerfile has no ENTRYPOINT", name)
	}
	// uspace-start [flags] -- COMMAND ...: both programs see the env.
	var progs []program
	cmd := entry
	if path.Base(entry[0]) == "uspace-start" {
		i := slices.Index(entry, "--")
		if i < 0 {
			t.Fatalf("%s Dockerfile: uspace-start without -- before the agent", name)
		}
		h := helpcheck.Run(t, helpcheck.Program(t, "uspace-start"), nil)
		helpcheck.Flags(t, h, entry[1:i])
		progs = append(progs, program{"uspace-start", h})
		cmd = entry[i+1:]
	}
	switch bin := path.Base(cmd[0]); bin {
	case "uspace-agent":
		if len(cmd) < 2 {
			t.Fatalf("%s Dockerfile: uspace-agent without host/container", name)
		}
		progs = append(progs, program{"uspace-agent " + cmd[1], helpcheck.Run(t, binaries.Path(t, "uspace-agent"), nil, cmd[1])})
		cmd = cmd[2:]
	case "uspace-cni-installer":
		progs = append(progs, program{bin, helpcheck.Run(t, helpcheck.Program(t, bin), nil)})
		cmd = cmd[1:]
	default:
		t.Fatalf("%s Dockerfile runs %s, which this test does not know", name, bin)
	}
	helpcheck.Flags(t, progs[len(progs)-1].help, cmd)
	return progs
}

// envOf resolves a container's environment the way the kubelet does, for
// a pod on node "node1": fieldRefs, ConfigMap keys, $(VAR) references to
// variables defined before. It checks every name is read by one of progs.
func envOf(t *testing.T, m *manifests, ns string, pod *corev1.PodSpec, c *corev1.Container, progs []program, extra map[string]bool) map[string]string {
	t.Helper()
	known := map[string]bool{}
	for _, p := range progs {
		for k := range p.help.Env() {
			known[k] = true
		}
	}
	vals := map[string]string{}
	for _, e := range c.Env {
		if !known[e.Name] && !extra[e.Name] {
			t.Errorf("container %s sets %s, which %s does not read", c.Name, e.Name, names(progs))
		}
		if _, dup := vals[e.Name]; dup {
			t.Errorf("container %s sets %s twice", c.Name, e.Name)
		}
		switch {
		case e.ValueFrom == nil:
			v, err := helpcheck.ExpandK8s(e.Value, vals)
			if err != nil {
				t.Errorf("container %s, %s: %v", c.Name, e.Name, err)
			}
			vals[e.Name] = v
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "spec.nodeName":
				vals[e.Name] = "node1"
			case "metadata.namespace":
				vals[e.Name] = ns
			case "metadata.name":
				vals[e.Name] = "a-pod"
			default:
				t.Errorf("container %s, %s: fieldRef %s is not used by uspace", c.Name, e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, ok := m.configMaps[ns+"/"+ref.Name]
			if !ok {
				t.Errorf("container %s, %s: ConfigMap %s/%s is not in the manifests", c.Name, e.Name, ns, ref.Name)
				continue
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				t.Errorf("container %s, %s: ConfigMap %s has no key %s", c.Name, e.Name, ref.Name, ref.Key)
			}
			vals[e.Name] = v
		default:
			t.Errorf("container %s, %s: unexpected valueFrom", c.Name, e.Name)
		}
	}
	return vals
}

func names(progs []program) string {
	var n []string
	for _, p := range progs {
		n = append(n, p.name)
	}
	return strings.Join(n, " / ")
}

// effective is a flag's value: the container's args, else the env the
// flag reads (its --help default under that env), else its default.
func effective(t *testing.T, c *corev1.Container, p program, env map[string]string, flag string) string {
	t.Helper()
	args := helpcheck.Flags(t, p.help, c.Args)
	if v, ok := args[flag]; ok {
		return v
	}
	// Re-read --help with the container's environment: the defaults then
	// show what the env sets.
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	bin := binaries.Path(t, "uspace-agent")
	var sub []string
	switch {
	case strings.HasPrefix(p.name, "uspace-agent "):
		sub = []string{strings.TrimPrefix(p.name, "uspace-agent ")}
	default:
		bin = helpcheck.Program(t, p.name)
	}
	return helpcheck.Run(t, bin, kv, sub...).Default(flag)
}

// mountFor finds the volume mount holding p, and p's path on the host
// when that volume is a hostPath.
func mountFor(pod *corev1.PodSpec, c *corev1.Container, p string) (*corev1.VolumeMount, *corev1.Volume, string) {
	var best *corev1.VolumeMount
	for i := range c.VolumeMounts {
		vm := &c.VolumeMounts[i]
		if p == vm.MountPath || strings.HasPrefix(p, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			if best == nil || len(vm.MountPath) > len(best.MountPath) {
				best = vm
			}
		}
	}
	if best == nil {
		return nil, nil, ""
	}
	for i := range pod.Volumes {
		v := &pod.Volumes[i]
		if v.Name == best.Name {
			host := ""
			if v.HostPath != nil {
				host = path.Join(v.HostPath.Path, strings.TrimPrefix(p, best.MountPath))
			}
			return best, v, host
		}
	}
	return best, nil, ""
}

// hostPathSame: p is on a hostPath volume at the same path as on the host
// (socket paths in etcd are host paths, seen alike by every container).
func hostPathSame(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, what, p string) {
	t.Helper()
	vm, v, host := mountFor(pod, c, p)
	switch {
	case vm == nil:
		t.Errorf("container %s: %s %s is on no volume mount", c.Name, what, p)
	case v == nil || v.HostPath == nil:
		t.Errorf("container %s: %s %s is not on a hostPath volume", c.Name, what, p)
	case host != p:
		t.Errorf("container %s: %s is %s inside but %s on the host: they must be the same path", c.Name, what, p, host)
	}
}

// credentials: the etcd credential files the env names are keys of the
// Secret mounted there (the example Secret of the same name).
func credentials(t *testing.T, m *manifests, ns string, pod *corev1.PodSpec, c *corev1.Container, env map[string]string, identity string) {
	t.Helper()
	for _, k := range []string{"USPACE_ETCD_CACERT", "USPACE_ETCD_CERT", "USPACE_ETCD_KEY"} {
		p, ok := env[k]
		if !ok {
			t.Errorf("container %s: no %s (etcd runs with TLS and client certificates)", c.Name, k)
			continue
		}
		vm, v, _ := mountFor(pod, c, p)
		if vm == nil || v == nil || v.Secret == nil {
			t.Errorf("container %s: %s=%s is not in a mounted Secret", c.Name, k, p)
			continue
		}
		if !vm.ReadOnly {
			t.Errorf("container %s: the credentials mount %s should be readOnly", c.Name, vm.MountPath)
		}
		if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o077 != 0 {
			t.Errorf("container %s: Secret %s must be mounted with defaultMode 0400 or 0600 (keys, password files)", c.Name, v.Secret.SecretName)
		}
		file := strings.TrimPrefix(strings.TrimPrefix(p, vm.MountPath), "/")
		s, ok := m.secrets[ns+"/"+v.Secret.SecretName]
		if !ok {
			t.Errorf("container %s: Secret %s/%s has no example in the manifests", c.Name, ns, v.Secret.SecretName)
			continue
		}
		if _, ok := s.StringData[file]; !ok {
			if _, ok := s.Data[file]; !ok {
				t.Errorf("container %s: %s=%s, but Secret %s has no key %s (for node1)", c.Name, k, p, s.Name, file)
			}
		}
		if k == "USPACE_ETCD_CERT" && file != identity+".pem" {
			t.Errorf("container %s: client certificate %s, want %s.pem (CN = the etcd user %s, as make-certs.sh names it)", c.Name, file, identity, identity)
		}
	}
}

func container(t *testing.T, cs []corev1.Container, name string) *corev1.Container {
	t.Helper()
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

func volumesUsed(t *testing.T, pod *corev1.PodSpec) {
	t.Helper()
	used := map[string]bool{}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		for _, vm := range c.VolumeMounts {
			used[vm.Name] = true
			if !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name }) {
				t.Errorf("container %s mounts %s, which is no volume of the pod", c.Name, vm.Name)
			}
		}
	}
	for _, v := range pod.Volumes {
		if !used[v.Name] {
			t.Errorf("volume %s is mounted nowhere", v.Name)
		}
	}
}

func TestManifests(t *testing.T) {
	m := load(t)

	ds, ok := m.daemonSets["uspace-system/uspace-host-agent"]
	if !ok {
		t.Fatal("no DaemonSet uspace-system/uspace-host-agent")
	}
	ns := ds.Namespace
	if _, ok := m.namespaces[ns]; !ok {
		t.Errorf("namespace %s is not created by the manifests", ns)
	}
	pod := &ds.Spec.Template.Spec
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("the DaemonSet's selector %v does not select its own pods %v", ds.Spec.Selector, ds.Spec.Template.Labels)
	}
	if _, ok := m.serviceAccounts[ns+"/"+pod.ServiceAccountName]; !ok {
		t.Errorf("ServiceAccount %s is not in the manifests", pod.ServiceAccountName)
	}
	volumesUsed(t, pod)

	var sharedHost string
	t.Run("host-agent", func(t *testing.T) {
		c := container(t, pod.Containers, "host-agent")
		progs := imageEntrypoint(t, c.Image)
		agent := progs[len(progs)-1]
		if agent.name != "uspace-agent host" {
			t.Fatalf("image %s runs %s, want uspace-agent host", c.Image, agent.name)
		}
		env := envOf(t, m, ns, pod, c, progs, nil)
		if f := fieldPath(c, "USPACE_HOST"); f != "spec.nodeName" {
			t.Errorf("USPACE_HOST comes from %q, want the downward API's spec.nodeName", f)
		}
		// --state-dir outlives the pod: a restarted agent resumes the
		// registration lease recorded there.
		for _, flag := range []string{"shared-dir", "volume-root", "state-dir"} {
			hostPathSame(t, pod, c, "--"+flag, effective(t, c, agent, env, flag))
		}
		for _, flag := range []string{"vpp-socket", "spdk-socket"} {
			// A dataplane socket is replaced when the dataplane restarts:
			// mount its directory, not the file.
			sock := effective(t, c, agent, env, flag)
			hostPathSame(t, pod, c, "--"+flag+" directory", path.Dir(sock))
		}
		sharedHost = effective(t, c, agent, env, "shared-dir")
		credentials(t, m, ns, pod, c, env, "uspace-host-"+env["USPACE_HOST"])
		// Probes reach the metrics listener.
		addr := effective(t, c, agent, env, "metrics-addr")
		_, port, _ := strings.Cut(addr, ":")
		if strings.HasPrefix(addr, "127.0.0.1:") || strings.HasPrefix(addr, "localhost:") {
			t.Errorf("--metrics-addr %s listens on loopback only: the kubelet's probes cannot reach it", addr)
		}
		for what, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != port {
				t.Errorf("%s probe does not get --metrics-addr's port %s", what, port)
			}
		}
		if p := c.LivenessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "/healthz" {
			t.Errorf("liveness probe path %s, the agent serves /healthz", p.HTTPGet.Path)
		}
		if p := c.ReadinessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "/readyz" {
			t.Errorf("readiness probe path %s, the agent serves /readyz", p.HTTPGet.Path)
		}
		if !strings.Contains(agent.help.Text, "/healthz") || !strings.Contains(agent.help.Text, "/readyz") {
			t.Error("the agent's --help does not mention /healthz and /readyz any more: check the probes")
		}
		// mknod b 241/242 for Kata's vhost-user nodes.
		sc := c.SecurityContext
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Add, "MKNOD") {
			t.Error("the host agent needs capability MKNOD for the vhost-user block nodes")
		}
	})

	t.Run("cni-installer", func(t *testing.T) {
		c := container(t, pod.InitContainers, "cni-installer")
		progs := imageEntrypoint(t, c.Image)
		inst := progs[len(progs)-1]
		if inst.name != "uspace-cni-installer" {
			t.Fatalf("image %s runs %s, want uspace-cni-installer", c.Image, inst.name)
		}
		env := envOf(t, m, ns, pod, c, progs, nil)
		if f := fieldPath(c, "USPACE_HOST"); f != "spec.nodeName" {
			t.Errorf("USPACE_HOST comes from %q, want spec.nodeName (uspace.conf names this node)", f)
		}
		credentials(t, m, ns, pod, c, env, "uspace-host-"+env["USPACE_HOST"])
		// --cni-bin-dir is the host's /opt/cni/bin; --conf-dir the host's
		// directory of uspace.conf, and --host-conf-dir that same
		// directory as the host sees it.
		binDir := effective(t, c, inst, env, "cni-bin-dir")
		if _, v, host := mountFor(pod, c, binDir); v == nil || v.HostPath == nil || host != "/opt/cni/bin" {
			t.Errorf("--cni-bin-dir %s is %q on the host, want /opt/cni/bin", binDir, host)
		}
		confDir := effective(t, c, inst, env, "conf-dir")
		_, v, host := mountFor(pod, c, confDir)
		if v == nil || v.HostPath == nil || host != path.Dir(cni.DefaultConfigFile) {
			t.Errorf("--conf-dir %s is %q on the host, want %s (the plugin reads %s)", confDir, host, path.Dir(cni.DefaultConfigFile), cni.DefaultConfigFile)
		}
		if hcd := effective(t, c, inst, env, "host-conf-dir"); hcd != host {
			t.Errorf("--host-conf-dir %s, but --conf-dir %s is %s on the host", hcd, confDir, host)
		}
		// The host agent and the plugin must use the same etcd and node.
		agent := container(t, pod.Containers, "host-agent")
		agentEnv := envOf(t, m, ns, pod, agent, imageEntrypoint(t, agent.Image), nil)
		for _, k := range []string{"USPACE_HOST", "USPACE_ETCD_ENDPOINTS"} {
			if env[k] != agentEnv[k] {
				t.Errorf("%s: installer %q, agent %q: the plugin and the agent must agree", k, env[k], agentEnv[k])
			}
		}
	})

	t.Run("network-attachments", func(t *testing.T) {
		if len(m.nads) == 0 {
			t.Fatal("no NetworkAttachmentDefinition")
		}
		want := map[string]string{"memif-network": "memif", "vhost-network": "vhostuser"}
		endpoints := m.configMaps[ns+"/uspace-config"].Data["etcd-endpoints"]
		for key, n := range m.nads {
			// The plugin ignores unknown keys and matches them in any case
			// (as upstream); our own manifests spell every key exactly.
			var raw map[string]any
			if err := json.Unmarshal([]byte(n.Spec.Config), &raw); err != nil {
				t.Errorf("NAD %s: config is not JSON: %v", key, err)
				continue
			}
			for _, k := range unknownKeys(raw, reflect.TypeOf(cni.NetConf{}), "") {
				t.Errorf("NAD %s: config key %s is not one the plugin reads (spelling and case must match)", key, k)
			}
			conf, err := cni.ParseConfig([]byte(n.Spec.Config))
			if err != nil {
				t.Errorf("NAD %s: the plugin refuses its config: %v", key, err)
				continue
			}
			if conf.Type != "userspace" || conf.Name != n.Name {
				t.Errorf("NAD %s: type %q name %q, want type userspace (the installed plugin) and name %s", key, conf.Type, conf.Name, n.Name)
			}
			if iftype, ok := want[n.Name]; !ok || conf.Host.IfType != iftype || conf.Host.Engine != "vpp" {
				t.Errorf("NAD %s: host engine %q iftype %q", key, conf.Host.Engine, conf.Host.IfType)
			}
			if conf.Host.NetType == "bridge" && conf.Host.Bridge.BridgeName == "" {
				t.Errorf("NAD %s: a bridge network without bridgeName", key)
			}
			if conf.IPAM.Type == "" {
				t.Errorf("NAD %s: no ipam", key)
			}
			if conf.USpace.AddTimeout <= 0 {
				t.Errorf("NAD %s: no uspace section (addTimeout)", key)
			}
			if sharedHost != "" && conf.SharedDir != sharedHost {
				t.Errorf("NAD %s: sharedDir %s, but the host agent's --shared-dir is %s", key, conf.SharedDir, sharedHost)
			}
			// With the uspace.conf the installer writes on node1, the
			// section resolves to the DaemonSet's etcd and node.
			installed, _ := json.Marshal(map[string]any{"etcd": map[string]any{"endpoints": strings.Split(endpoints, ",")}, "host": "node1"})
			us, err := conf.USpace.Resolve(cni.Environment{
				Getenv: func(k string) string {
					if k == cni.EnvConfig {
						return "/etc/uspace/uspace.conf"
					}
					return ""
				},
				ReadFile: func(string) ([]byte, error) { return installed, nil },
				Hostname: func() (string, error) { return "wrong", nil },
			})
			if err != nil {
				t.Errorf("NAD %s: uspace section with the installed uspace.conf: %v", key, err)
			} else if us.Host != "node1" || strings.Join(us.Etcd.Endpoints, ",") != endpoints {
				t.Errorf("NAD %s: resolves to host %q endpoints %v; the section must leave them to uspace.conf", key, us.Host, us.Etcd.Endpoints)
			}
		}
		for name := range want {
			found := false
			for _, n := range m.nads {
				found = found || n.Name == name
			}
			if !found {
				t.Errorf("no NAD %s", name)
			}
		}
	})

	t.Run("vpp-pod", func(t *testing.T) {
		if len(m.pods) == 0 {
			t.Fatal("no example Pod")
		}
		for key, p := range m.pods {
			spec := &p.Spec
			volumesUsed(t, spec)
			for _, sel := range strings.Split(p.Annotations["k8s.v1.cni.cncf.io/networks"], ",") {
				name, _, _ := strings.Cut(strings.TrimSpace(sel), "@")
				nsName := p.Namespace + "/" + name
				if strings.Contains(name, "/") {
					nsName = name
				}
				if _, ok := m.nads[nsName]; !ok {
					t.Errorf("pod %s asks for network %q: no such NetworkAttachmentDefinition", key, sel)
				}
			}
			c := container(t, spec.Containers, "vpp")
			progs := imageEntrypoint(t, c.Image)
			agent := progs[len(progs)-1]
			if agent.name != "uspace-agent container" || progs[0].name != "uspace-start" {
				t.Fatalf("pod %s: image %s runs %s, want uspace-start then uspace-agent container", key, c.Image, names(progs))
			}
			env := envOf(t, m, p.Namespace, spec, c, progs, nil)
			for name, fp := range map[string]string{"USPACE_HOST": "spec.nodeName", "POD_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"} {
				if f := fieldPath(c, name); f != fp {
					t.Errorf("pod %s: %s comes from %q, want the downward API's %s", key, name, f, fp)
				}
			}
			// Endpoint mode: the agent reaches etcd through the host
			// agent's endpoint in the pod's netns, memif sockets are
			// abstract sockets there too, so the pod carries no etcd
			// address or credential and mounts nothing of the node.
			for name, v := range env {
				if strings.HasPrefix(name, "USPACE_ETCD_") && v != "" {
					t.Errorf("pod %s: %s=%q; the container agent needs no etcd address or credential", key, name, v)
				}
			}
			for _, v := range spec.Volumes {
				if v.HostPath != nil || v.Secret != nil || v.Projected != nil {
					t.Errorf("pod %s: volume %s is a hostPath, Secret or projected volume; the pod needs none", key, v.Name)
				}
			}
			if dir := effective(t, c, agent, env, "device-info-dir"); dir == "" {
				t.Errorf("pod %s: no --device-info-dir: the app would not find its sockets", key)
			} else if !emptyDirAt(spec, c, dir) {
				t.Errorf("pod %s: --device-info-dir %s is on no emptyDir mount the app could share", key, dir)
			}
		}
	})

	t.Run("images", func(t *testing.T) {
		// Every image named is one build.sh makes.
		build, err := os.ReadFile(filepath.Join(helpcheck.Root(), "deployments", "images", "build.sh"))
		if err != nil {
			t.Fatal(err)
		}
		var all []corev1.Container
		for _, d := range m.daemonSets {
			all = append(append(all, d.Spec.Template.Spec.InitContainers...), d.Spec.Template.Spec.Containers...)
		}
		for _, p := range m.pods {
			all = append(all, p.Spec.Containers...)
		}
		for _, c := range all {
			repo, _, _ := strings.Cut(c.Image, ":")
			name := strings.TrimPrefix(repo, "uspace/")
			if !bytes.Contains(build, []byte("\n\t"+name+")")) {
				t.Errorf("container %s: image %s is not one deployments/images/build.sh builds", c.Name, c.Image)
			}
		}
	})
}

func fieldPath(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			return e.ValueFrom.FieldRef.FieldPath
		}
	}
	return ""
}

// jsonFields maps the JSON names of a struct's fields (embedded structs
// flattened) to their types.
func jsonFields(t reflect.Type, into map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && tag == "" && ft.Kind() == reflect.Struct {
			jsonFields(ft, into)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if _, seen := into[tag]; !seen {
			into[tag] = ft
		}
	}
}

// unknownKeys lists the keys of obj (recursively into objects that map to
// structs) that t has no field for. The ipam object belongs to the IPAM
// plugin and is not looked into.
func unknownKeys(obj map[string]any, t reflect.Type, at string) []string {
	fields := map[string]reflect.Type{}
	jsonFields(t, fields)
	var out []string
	for k, v := range obj {
		ft, ok := fields[k]
		if !ok {
			out = append(out, at+k)
			continue
		}
		sub, isObj := v.(map[string]any)
		if isObj && ft.Kind() == reflect.Struct && k != "ipam" {
			out = append(out, unknownKeys(sub, ft, at+k+".")...)
		}
	}
	slices.Sort(out)
	return out
}

// emptyDirAt says whether dir is the mount path of an emptyDir volume in c.
func emptyDirAt(pod *corev1.PodSpec, c *corev1.Container, dir string) bool {
	vm, v, _ := mountFor(pod, c, dir)
	return vm != nil && v != nil && v.EmptyDir != nil && path.Clean(vm.MountPath) == path.Clean(dir)
}
