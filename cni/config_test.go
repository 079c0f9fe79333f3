package cni

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/uspace-io/uspace/schema"
)

// Upstream README example (HEAD): memif, bridgeName "4".
const readmeMemif = `{"cniVersion":"0.3.1","type":"userspace","name":"memif-network",
 "host":{"engine":"vpp","iftype":"memif","netType":"bridge",
         "memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeName":"4"}},
 "container":{"engine":"vpp","iftype":"memif","netType":"interface",
              "memif":{"role":"slave","mode":"ethernet"}},
 "ipam":{"type":"host-local","subnet":"10.56.217.0/24","rangeStart":"10.56.217.131",
         "rangeEnd":"10.56.217.190","routes":[{"dst":"0.0.0.0/0"}],"gateway":"10.56.217.1"}}`

// Seed-era README: identical except the int bridgeId.
const seedMemif = `{"cniVersion":"0.3.1","type":"userspace","name":"memif-network",
 "host":{"engine":"vpp","iftype":"memif","netType":"bridge",
         "memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeId":4}},
 "container":{"engine":"vpp","iftype":"memif","netType":"interface",
              "memif":{"role":"slave","mode":"ethernet"}},
 "ipam":{"type":"host-local","subnet":"10.56.217.0/24","rangeStart":"10.56.217.131",
         "rangeEnd":"10.56.217.190","routes":[{"dst":"0.0.0.0/0"}],"gateway":"10.56.217.1"}}`

// HEAD NAD (examples/vpp-memif-ping/userspace-vpp-netAttach.yaml) adds
// kubeconfig, logFile and logLevel.
const headNAD = `{"cniVersion":"0.3.1","type":"userspace","name":"userspace-vpp-net",
 "kubeconfig":"/etc/cni/net.d/multus.d/multus.kubeconfig",
 "logFile":"/var/log/userspace-vpp-net-cni.log","logLevel":"debug",
 "host":{"engine":"vpp","iftype":"memif","netType":"bridge",
         "memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeName":"4"}},
 "container":{"engine":"vpp","iftype":"memif","netType":"interface",
              "memif":{"role":"slave","mode":"ethernet"}},
 "ipam":{"type":"host-local","subnet":"10.56.217.0/24","rangeStart":"10.56.217.131",
         "rangeEnd":"10.56.217.190","routes":[{"dst":"0.0.0.0/0"}],"gateway":"10.56.217.1"}}`

// The OVS variant with the engine changed to VPP: vhost-user with VPP.
const vhostVPP = `{"cniVersion":"0.3.1","type":"userspace","name":"vhost-network",
 "host":{"engine":"vpp","iftype":"vhostuser","netType":"bridge",
         "vhost":{"mode":"client"},"bridge":{"bridgeName":"4"}},
 "container":{"engine":"vpp","iftype":"vhostuser","netType":"interface",
              "vhost":{"mode":"server"}},
 "ipam":{"type":"host-local","subnet":"10.56.217.0/24"}}`

func mustParse(t *testing.T, conf string) *NetConf {
	t.Helper()
	c, err := ParseConfig([]byte(conf))
	if err != nil {
		t.Fatalf("ParseConfig: %v\n%s", err, conf)
	}
	return c
}

func TestParseUpstreamExamples(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		bd         uint32
		typ        schema.IfType
	}{
		{"readme bridgeName", readmeMemif, 4, schema.IfTypeMemif},
		{"seed bridgeId", seedMemif, 4, schema.IfTypeMemif},
		{"head NAD", headNAD, 4, schema.IfTypeMemif},
		{"vhostuser", vhostVPP, 4, schema.IfTypeVhostUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.conf)
			bd, prob := c.bridgeDomain()
			if prob != "" || bd != tc.bd {
				t.Errorf("bridge domain = %d %q, want %d", bd, prob, tc.bd)
			}
			if schema.IfType(c.Host.IfType) != tc.typ {
				t.Errorf("iftype = %q", c.Host.IfType)
			}
			if c.SharedDir != DefaultSharedDir {
				t.Errorf("sharedDir = %q", c.SharedDir)
			}
			if c.IPAM.Type != "host-local" {
				t.Errorf("ipam.type = %q", c.IPAM.Type)
			}
		})
	}
	c := mustParse(t, headNAD)
	if c.LogFile != "/var/log/userspace-vpp-net-cni.log" || c.LogLevel != "debug" || c.Kubeconfig == "" {
		t.Errorf("log fields: %q %q %q", c.LogFile, c.LogLevel, c.Kubeconfig)
	}
	// The kubeconfig does not exist here: a warning, not an error.
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "kubeconfig") {
		t.Errorf("warnings = %q", c.Warnings)
	}
}

func TestBridgeNameWinsOverBridgeID(t *testing.T) {
	c := mustParse(t, strings.Replace(readmeMemif, `"bridgeName":"4"`, `"bridgeName":"12","bridgeId":4`, 1))
	if bd, _ := c.bridgeDomain(); bd != 12 {
		t.Errorf("bridge domain = %d, want 12 (bridgeName wins)", bd)
	}
}

func TestMixedCaseAndUnknownKeys(t *testing.T) {
	conf := `{"cniVersion":"0.3.1","Type":"userspace","Name":"memif-network","SomethingNew":{"x":1},
	 "LogFile":"/tmp/x.log","LOGLEVEL":"Info",
	 "Host":{"Engine":"vpp","IfType":"memif","NetType":"bridge","Extra":true,
	         "Memif":{"Role":"master","Mode":"ethernet","SocketFile":"shared.sock"},"Bridge":{"BridgeName":"7","VlanId":3}},
	 "CONTAINER":{"IFTYPE":"memif","MEMIF":{"ROLE":"slave"}},
	 "SharedDir":"/run/uspace/shared",
	 "USpace":{"Host":"node-1","AddTimeout":"3s","Etcd":{"Endpoints":["127.0.0.1:1"],"DialTimeout":"1s"}}}`
	c := mustParse(t, conf)
	if c.Host.IfType != "memif" || c.Host.NetType != "bridge" || c.Host.Memif.Socketfile != "shared.sock" {
		t.Errorf("host = %+v", c.Host)
	}
	if bd, _ := c.bridgeDomain(); bd != 7 {
		t.Errorf("bd = %d", bd)
	}
	if c.Container.Memif.Role != "slave" || c.SharedDir != "/run/uspace/shared" {
		t.Errorf("container = %+v, sharedDir %q", c.Container, c.SharedDir)
	}
	if c.LogFile != "/tmp/x.log" || c.LogLevel != "info" {
		t.Errorf("log = %q %q", c.LogFile, c.LogLevel)
	}
	u := c.USpace
	if u.Host != "node-1" || time.Duration(u.AddTimeout) != 3*time.Second || u.Etcd.DialTimeout != time.Second || u.Etcd.Endpoints[0] != "127.0.0.1:1" {
		t.Errorf("uspace = %+v", u)
	}
}

// Upstream's own test vectors (userspace/userspace_test.go).
func TestUpstreamVectors(t *testing.T) {
	for _, bad := range []string{`{`, `{"host"}`, `{"host":}`, `{"host",}`} {
		_, err := ParseConfig([]byte(bad))
		if e := cniErr(t, err); e.Code != types.ErrDecodingFailure || !strings.Contains(e.Msg, "failed to load netconf:") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	// Bad log settings are stderr notes, not errors.
	for _, conf := range []string{`{"LogLevel":"nologsatall"}`, `{"LogFile":"/proc/cant_log_here.log"}`, `{"logFile":5,"logLevel":[1],"kubeconfig":{}}`} {
		c, err := decodeNetConf([]byte(conf))
		if err != nil {
			t.Errorf("%s: %v", conf, err)
			continue
		}
		if c.LogLevel != "warning" {
			t.Errorf("%s: level %q", conf, c.LogLevel)
		}
	}
	_, err := ParseConfig([]byte(`{"host":{"engine":"nonsense"}}`))
	if e := cniErr(t, err); !strings.Contains(e.Msg, `host.engine "nonsense"`) {
		t.Errorf("engine nonsense: %v", err)
	}
}

// The trailing comma of upstream's tests/vhostuser-sample.conf is invalid
// JSON: rejected as a decoding failure, as upstream.
func TestTrailingCommaSample(t *testing.T) {
	conf := strings.Replace(readmeMemif, `"bridge":{"bridgeName":"4"}},`, `"bridge":{"bridgeName":"4"},},`, 1)
	_, err := ParseConfig([]byte(conf))
	if e := cniErr(t, err); e.Code != types.ErrDecodingFailure {
		t.Errorf("got %v", err)
	}
}

func cniErr(t *testing.T, err error) *types.Error {
	t.Helper()
	var e *types.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *types.Error", err, err)
	}
	return e
}

func TestBadConfigsNameTheirField(t *testing.T) {
	mod := func(old, new string) string {
		if !strings.Contains(readmeMemif, old) {
			t.Fatalf("test bug: %q not in the example", old)
		}
		return strings.Replace(readmeMemif, old, new, 1)
	}
	for _, tc := range []struct {
		name, conf, field string
		code              uint
	}{
		{"ovs-dpdk", mod(`"host":{"engine":"vpp"`, `"host":{"engine":"ovs-dpdk"`), "host.engine", types.ErrInvalidNetworkConfig},
		{"container ovs-dpdk", mod(`"container":{"engine":"vpp"`, `"container":{"engine":"ovs-dpdk"`), "container.engine", types.ErrInvalidNetworkConfig},
		{"engine missing", mod(`"host":{"engine":"vpp",`, `"host":{`), "host.engine", types.ErrInvalidNetworkConfig},
		{"iftype", mod(`"host":{"engine":"vpp","iftype":"memif"`, `"host":{"engine":"vpp","iftype":"veth"`), "host.iftype", types.ErrInvalidNetworkConfig},
		{"iftype mismatch", mod(`"container":{"engine":"vpp","iftype":"memif"`, `"container":{"engine":"vpp","iftype":"vhostuser"`), "container.iftype", types.ErrInvalidNetworkConfig},
		{"netType", mod(`"netType":"bridge"`, `"netType":"none"`), "host.netType", types.ErrInvalidNetworkConfig},
		{"container netType", mod(`"netType":"interface"`, `"netType":"l3"`), "container.netType", types.ErrInvalidNetworkConfig},
		{"bridgeName not a number", mod(`"bridgeName":"4"`, `"bridgeName":"br-4"`), "host.bridge.bridgeName", types.ErrInvalidNetworkConfig},
		{"bridgeName over uint32", mod(`"bridgeName":"4"`, `"bridgeName":"4294967296"`), "host.bridge.bridgeName", types.ErrInvalidNetworkConfig},
		{"bridgeName zero", mod(`"bridgeName":"4"`, `"bridgeName":"0"`), "host.bridge.bridgeName", types.ErrInvalidNetworkConfig},
		{"bridgeId negative", mod(`"bridgeName":"4"`, `"bridgeId":-1`), "host.bridge.bridgeId", types.ErrInvalidNetworkConfig},
		{"bridgeId over uint32", mod(`"bridgeName":"4"`, `"bridgeId":4294967296`), "host.bridge.bridgeId", types.ErrInvalidNetworkConfig},
		{"bridgeId string", mod(`"bridgeName":"4"`, `"bridgeId":"4"`), "host.bridge.bridgeId", types.ErrInvalidNetworkConfig},
		{"bridgeId float", mod(`"bridgeName":"4"`, `"bridgeId":4.5`), "host.bridge.bridgeId", types.ErrInvalidNetworkConfig},
		{"bridge missing", mod(`,"bridge":{"bridgeName":"4"}`, ``), "host.bridge.bridgeName", types.ErrInvalidNetworkConfig},
		{"role", mod(`"role":"master"`, `"role":"boss"`), "host.memif.role", types.ErrInvalidNetworkConfig},
		{"role missing", mod(`"role":"master",`, ``), "host.memif.role", types.ErrInvalidNetworkConfig},
		{"same roles", mod(`"role":"slave"`, `"role":"master"`), "container.memif.role", types.ErrInvalidNetworkConfig},
		{"mode", mod(`"memif":{"role":"master","mode":"ethernet"}`, `"memif":{"role":"master","mode":"tun"}`), "host.memif.mode", types.ErrInvalidNetworkConfig},
		{"host inject-punt (crashes VPP 25.02)", mod(`"memif":{"role":"master","mode":"ethernet"}`, `"memif":{"role":"master","mode":"inject-punt"}`), "host.memif.mode", types.ErrInvalidNetworkConfig},
		{"container inject-punt (crashes VPP 25.02)", mod(`"memif":{"role":"slave","mode":"ethernet"}`, `"memif":{"role":"slave","mode":"inject-punt"}`), "container.memif.mode", types.ErrInvalidNetworkConfig},
		{"mode mismatch", mod(`"memif":{"role":"slave","mode":"ethernet"}`, `"memif":{"role":"slave","mode":"ip"}`), "container.memif.mode", types.ErrInvalidNetworkConfig},
		{"socketfile path", mod(`"mode":"ethernet"}`, `"mode":"ethernet","socketfile":"../x.sock"}`), "host.memif.socketfile", types.ErrInvalidNetworkConfig},
		{"host wrong type", mod(`"host":{"engine":"vpp","iftype":"memif","netType":"bridge",
         "memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeName":"4"}}`, `"host":"vpp"`), "host", types.ErrInvalidNetworkConfig},
		{"memif wrong type", mod(`"memif":{"role":"master","mode":"ethernet"}`, `"memif":["master"]`), "host.memif", types.ErrInvalidNetworkConfig},
		{"sharedDir", mod(`"type":"userspace"`, `"type":"userspace","sharedDir":"relative/dir"`), "sharedDir", types.ErrInvalidNetworkConfig},
		{"sharedDir type", mod(`"type":"userspace"`, `"type":"userspace","sharedDir":7`), "sharedDir", types.ErrInvalidNetworkConfig},
		{"name", mod(`"name":"memif-network"`, `"name":"memif-network-"`), "name", types.ErrInvalidNetworkConfig},
		{"uspace host", mod(`"type":"userspace"`, `"type":"userspace","uspace":{"host":"a/b"}`), "uspace.host", types.ErrInvalidNetworkConfig},
		{"uspace addTimeout", mod(`"type":"userspace"`, `"type":"userspace","uspace":{"addTimeout":"ten seconds"}`), "uspace.addTimeout", types.ErrInvalidNetworkConfig},
		{"uspace dialTimeout", mod(`"type":"userspace"`, `"type":"userspace","uspace":{"etcd":{"dialTimeout":"soon"}}`), "uspace.etcd.dialTimeout", types.ErrInvalidNetworkConfig},
		{"uspace endpoints type", mod(`"type":"userspace"`, `"type":"userspace","uspace":{"etcd":{"endpoints":"127.0.0.1:2379"}}`), "endpoints", types.ErrInvalidNetworkConfig},
		{"uspace vni zero-extended over 24 bits", mod(`"type":"userspace"`, `"type":"userspace","uspace":{"vni":16777216}`), "uspace.vni", types.ErrInvalidNetworkConfig},
		{"uspace vni without bridge", strings.Replace(mod(`"type":"userspace"`, `"type":"userspace","uspace":{"vni":4242}`), `"netType":"bridge"`, `"netType":"interface"`, 1), "uspace.vni", types.ErrInvalidNetworkConfig},
		{"runtime mac", mod(`"type":"userspace"`, `"type":"userspace","runtimeConfig":{"mac":"zz"}`), "runtimeConfig.mac", types.ErrInvalidNetworkConfig},
		{"device-info file relative", mod(`"type":"userspace"`, `"type":"userspace","runtimeConfig":{"CNIDeviceInfoFile":"devinfo.json"}`), "runtimeConfig.CNIDeviceInfoFile", types.ErrInvalidNetworkConfig},
		{"memif socket kind unknown", mod(`"type":"userspace"`, `"type":"userspace","uspace":{"memifSocket":"Abstract"}`), `uspace.memifSocket "Abstract": must be "abstract"`, types.ErrInvalidNetworkConfig},
		{"memif socket abstract for vhost-user", strings.Replace(strings.Replace(mod(`"type":"userspace"`, `"type":"userspace","uspace":{"memifSocket":"abstract"}`),
			`"iftype":"memif"`, `"iftype":"vhostuser"`, 2), `"memif":{"role":"master","mode":"ethernet"}`, `"vhost":{"mode":"server"}`, 1), "applies to memif only", types.ErrInvalidNetworkConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.conf))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.conf)
			}
			e := cniErr(t, err)
			if e.Code != tc.code {
				t.Errorf("code %d, want %d: %v", e.Code, tc.code, e)
			}
			if !strings.Contains(e.Msg, tc.field) {
				t.Errorf("message does not name %s: %s", tc.field, e.Msg)
			}
			t.Log(e.Msg)
		})
	}
}

// A config with several bad fields is refused naming every one, in
// multierror's list (on main: one line joined by "; "), so a user fixes
// them all in one go; one bad field stays one line.
func TestBadConfigNamesEveryField(t *testing.T) {
	conf := strings.NewReplacer(`"engine":"vpp","iftype":"memif","netType":"bridge"`, `"engine":"ovs-dpdk","iftype":"memif","netType":"bridge"`,
		`"role":"master"`, `"role":"boss"`).Replace(readmeMemif)
	_, err := ParseConfig([]byte(conf))
	e := cniErr(t, err)
	want := "invalid userspace network config: 2 errors occurred:\n" +
		"\t* host.engine \"ovs-dpdk\": not supported by uspace (only \"vpp\"; uspace drives VPP)\n" +
		"\t* host.memif.role \"boss\": must be \"master\" or \"slave\""
	if e.Code != types.ErrInvalidNetworkConfig || e.Msg != want {
		t.Errorf("code %d, message:\n%s\nwant:\n%s", e.Code, e.Msg, want)
	}
	_, err = ParseConfig([]byte(strings.Replace(readmeMemif, `"role":"master"`, `"role":"boss"`, 1)))
	if e := cniErr(t, err); e.Msg != `invalid userspace network config: host.memif.role "boss": must be "master" or "slave"` {
		t.Errorf("one bad field: %s", e.Msg)
	}
}

func TestVhostModes(t *testing.T) {
	c := mustParse(t, vhostVPP)
	if c.hostVhostMode() != schema.VhostClient {
		t.Errorf("host mode %q", c.hostVhostMode())
	}
	// Upstream: anything but "client" is a server; the container takes
	// the opposite unless set.
	c = mustParse(t, strings.Replace(strings.Replace(vhostVPP, `"vhost":{"mode":"client"}`, `"vhost":{}`, 1), `"vhost":{"mode":"server"}`, `"vhost":{}`, 1))
	if c.hostVhostMode() != schema.VhostServer {
		t.Errorf("default host mode %q", c.hostVhostMode())
	}
	_, err := ParseConfig([]byte(strings.Replace(vhostVPP, `"vhost":{"mode":"server"}`, `"vhost":{"mode":"client"}`, 1)))
	if e := cniErr(t, err); !strings.Contains(e.Msg, "container.vhost.mode") {
		t.Errorf("same modes: %v", err)
	}
}

func TestResolveDefaults(t *testing.T) {
	files := map[string]string{
		DefaultConfigFile: `{"etcd":{"endpoints":["10.0.0.1:2379"],"dialTimeout":"2s","passwordFile":"/etc/uspace/pw","username":"u"},"host":"filehost","addTimeout":"20s"}`,
		"/custom.conf":    `{"host":"customhost","delTimeout":"1s"}`,
		"/bad.conf":       `{"addTimeout":"never"}`,
	}
	envOf := func(vars map[string]string) Environment {
		return Environment{
			Getenv: func(k string) string { return vars[k] },
			ReadFile: func(p string) ([]byte, error) {
				if s, ok := files[p]; ok {
					return []byte(s), nil
				}
				return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
			},
			Hostname: func() (string, error) { return "kernelhost", nil },
		}
	}

	// The file fills what the network config leaves empty.
	u, err := USpaceConf{}.Resolve(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "filehost" || u.Etcd.Endpoints[0] != "10.0.0.1:2379" || u.Etcd.DialTimeout != 2*time.Second ||
		time.Duration(u.AddTimeout) != 20*time.Second || time.Duration(u.DelTimeout) != DefaultDelTimeout || u.Etcd.PasswordFile != "/etc/uspace/pw" {
		t.Errorf("from file: %+v", u)
	}
	// Env beats the file; the network config beats both.
	u, err = USpaceConf{Host: "confhost"}.Resolve(envOf(map[string]string{EnvHost: "envhost", "USPACE_ETCD_ENDPOINTS": "e1:2379, e2:2379"}))
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "confhost" || len(u.Etcd.Endpoints) != 2 || u.Etcd.Endpoints[1] != "e2:2379" {
		t.Errorf("precedence: %+v", u)
	}
	u, _ = USpaceConf{}.Resolve(envOf(map[string]string{EnvHost: "envhost"}))
	if u.Host != "envhost" {
		t.Errorf("env host: %q", u.Host)
	}
	// A password in the env is not combined with a password file from the
	// defaults file (store.Connect refuses both).
	u, _ = USpaceConf{}.Resolve(envOf(map[string]string{"USPACE_ETCD_PASSWORD": "secret"}))
	if u.Etcd.PasswordFile != "" || u.Etcd.Password != "secret" {
		t.Errorf("password: file %q", u.Etcd.PasswordFile)
	}
	// USPACE_CONFIG moves the file; a missing explicit file is an error, a
	// missing default file is not.
	u, err = USpaceConf{}.Resolve(envOf(map[string]string{EnvConfig: "/custom.conf"}))
	if err != nil || u.Host != "customhost" || time.Duration(u.DelTimeout) != time.Second || time.Duration(u.AddTimeout) != DefaultAddTimeout {
		t.Errorf("custom file: %+v %v", u, err)
	}
	if _, err := (USpaceConf{}).Resolve(envOf(map[string]string{EnvConfig: "/missing.conf"})); err == nil {
		t.Error("missing explicit defaults file accepted")
	}
	if _, err := (USpaceConf{}).Resolve(envOf(map[string]string{EnvConfig: "/bad.conf"})); err == nil || !strings.Contains(err.Error(), "addTimeout") {
		t.Errorf("bad defaults file: %v", err)
	}
	// No file, no env: kernel host name and built-in timeouts.
	delete(files, DefaultConfigFile)
	u, err = USpaceConf{}.Resolve(envOf(nil))
	if err != nil || u.Host != "kernelhost" || time.Duration(u.AddTimeout) != DefaultAddTimeout {
		t.Errorf("built-in: %+v %v", u, err)
	}
}

// The real file reader and JSON round trip of the section.
func TestUSpaceConfRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := USpaceConf{Host: "h1", AddTimeout: Duration(3 * time.Second)}
	in.Etcd.Endpoints = []string{"127.0.0.1:2379"}
	in.Etcd.DialTimeout = time.Second
	in.Etcd.Password = "never-written"
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "never-written") {
		t.Fatalf("password serialised: %s", b)
	}
	p := filepath.Join(dir, "uspace.conf")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	env := OSEnvironment()
	env.Getenv = func(k string) string {
		if k == EnvConfig {
			return p
		}
		return ""
	}
	out, err := USpaceConf{}.Resolve(env)
	if err != nil {
		t.Fatal(err)
	}
	if out.Host != "h1" || out.Etcd.DialTimeout != time.Second || time.Duration(out.AddTimeout) != 3*time.Second {
		t.Errorf("round trip: %s -> %+v", b, out)
	}
}

func TestParseArgs(t *testing.T) {
	// What Multus sends: its own pairs first, then kubelet's, duplicates
	// included.
	a := ParseArgs("IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-1;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1;" +
		"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-1;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1;junk;=x;MAC=02:00:00:00:00:01")
	if a.Namespace != "default" || a.Name != "pod-1" || a.UID != "u-1" || a.InfraContainerID != "abc" || a.MAC != "02:00:00:00:00:01" {
		t.Errorf("%+v", a)
	}
	// First non-empty value wins.
	a = ParseArgs("K8S_POD_NAME=;K8S_POD_NAME=second;K8S_POD_NAME=third")
	if a.Name != "second" {
		t.Errorf("name %q", a.Name)
	}
	if a := ParseArgs(""); a != (PodArgs{}) {
		t.Errorf("empty: %+v", a)
	}
}

// sharedDir as upstream configs write it is cleaned; what cleaning would
// move elsewhere (relative, "..") is still refused naming the field.
func TestSharedDirNormalised(t *testing.T) {
	withDir := func(dir string) string {
		return strings.Replace(readmeMemif, `"type":"userspace"`, `"type":"userspace","sharedDir":`+strconv.Quote(dir), 1)
	}
	for dir, want := range map[string]string{
		"/var/run/vpp/cni/shared/":  "/var/run/vpp/cni/shared",
		"/var/run//vpp/cni/shared":  "/var/run/vpp/cni/shared",
		"/var/run/vpp/./cni/shared": "/var/run/vpp/cni/shared",
		"/run/uspace":               "/run/uspace",
	} {
		if c := mustParse(t, withDir(dir)); c.SharedDir != want {
			t.Errorf("sharedDir %q became %q, want %q", dir, c.SharedDir, want)
		}
	}
	for _, dir := range []string{"/var/run/../shared", "relative/dir/", "shared/"} {
		if _, err := ParseConfig([]byte(withDir(dir))); err == nil || !strings.Contains(err.Error(), "sharedDir") {
			t.Errorf("sharedDir %q: %v", dir, err)
		}
	}
}
