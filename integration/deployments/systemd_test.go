package deployments_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/cni"
	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/deployments/internal/helpcheck"
)

func TestMain(m *testing.M) {
	code := m.Run()
	helpcheck.Cleanup()
	os.Exit(code)
}

// unit is a parsed systemd unit: section -> key -> values in order.
type unit map[string]map[string][]string

func (u unit) get(section, key string) []string { return u[section][key] }

// last is the effective value of a single-valued setting.
func (u unit) last(section, key string) string {
	v := u.get(section, key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// words is every word of a list setting (space-separated, repeatable).
func (u unit) words(section, key string) []string {
	var out []string
	for _, v := range u.get(section, key) {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

func parseUnit(t *testing.T, u unit, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a setting: %q", path, n, line)
			}
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			u[section][k] = append(u[section][k], v)
		}
	}
}

// loadUnit reads a unit and its drop-ins (<unit>.d/*.conf), as systemd does.
func loadUnit(t *testing.T, path string) unit {
	u := unit{}
	parseUnit(t, u, path)
	dropins, _ := filepath.Glob(path + ".d/*.conf")
	slices.Sort(dropins)
	for _, d := range dropins {
		parseUnit(t, u, d)
	}
	return u
}

// systemdAnalyze finds systemd-analyze, which `make deps` installs from
// Debian's systemd package; outside make the test is skipped without it.
func systemdAnalyze(t *testing.T) string {
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: `make deps` installs Debian's systemd package")
	}
	return p
}

const unitBinDir = "/usr/local/bin/"

// verify runs `systemd-analyze verify` on a copy of the unit (and its
// drop-ins) whose ExecStart names the binaries built from this tree instead
// of /usr/local/bin. Any output is a failure: systemd reports unknown
// settings and bad values as warnings and still exits 0.
func verify(t *testing.T, analyze, src string, bins map[string]string) {
	t.Helper()
	dir := t.TempDir()
	binDir := filepath.Join(dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, p := range bins {
		if err := os.Symlink(p, filepath.Join(binDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, []byte(strings.ReplaceAll(string(data), unitBinDir, binDir+"/")), 0o644); err != nil {
		t.Fatal(err)
	}
	if dropins, _ := filepath.Glob(src + ".d/*.conf"); len(dropins) > 0 {
		if err := os.Mkdir(dst+".d", 0o755); err != nil {
			t.Fatal(err)
		}
		for _, d := range dropins {
			b, err := os.ReadFile(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst+".d", filepath.Base(d)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd := exec.Command(analyze, "verify", dst)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", filepath.Base(src), err, out)
	}
}

// runPath maps /var/run to /run, as on every systemd host.
func runPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "/var/run/"); ok {
		return "/run/" + rest
	}
	return p
}

// writable says whether a RuntimeDirectory= (relative to /run), a
// StateDirectory= (relative to /var/lib) or a ReadWritePaths= entry covers
// dir.
func writable(u unit, dir string) bool {
	dir = runPath(dir)
	for _, d := range []struct{ key, root string }{{"RuntimeDirectory", "/run/"}, {"StateDirectory", "/var/lib/"}} {
		for _, rd := range u.words("Service", d.key) {
			if root := d.root + rd; dir == root || strings.HasPrefix(dir, root+"/") {
				return true
			}
		}
	}
	for _, p := range u.words("Service", "ReadWritePaths") {
		p = runPath(strings.TrimPrefix(p, "-"))
		if dir == p || strings.HasPrefix(dir, p+"/") {
			return true
		}
	}
	return false
}

// execStart checks the unit's command: the binary, its subcommand, and that
// every flag exists; it returns the flags' effective values (defaults from
// --help, overridden by the command line).
func execStart(t *testing.T, u unit, bin string, help helpcheck.Help, sub ...string) map[string]string {
	t.Helper()
	cmd := strings.Fields(u.last("Service", "ExecStart"))
	want := append([]string{unitBinDir + bin}, sub...)
	if len(cmd) < len(want) || !slices.Equal(cmd[:len(want)], want) {
		t.Fatalf("ExecStart=%s: want it to start with %q", u.last("Service", "ExecStart"), strings.Join(want, " "))
	}
	eff := map[string]string{}
	for name, f := range help.Flags {
		if name == f.Name {
			eff[name] = f.Default
		}
	}
	for k, v := range helpcheck.Flags(t, help, cmd[len(want):]) {
		eff[k] = v
	}
	return eff
}

// readEnvFile returns the assignments of an EnvironmentFile, and the names
// of the commented-out ones ("#NAME=value"), which are documentation of
// what may be set.
func readEnvFile(t *testing.T, path string) (set map[string]string, documented []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set = map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		commented := strings.HasPrefix(line, "#")
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "#"), "=")
		if !ok || strings.ContainsAny(k, " \t") {
			if !commented {
				t.Errorf("%s: not an assignment: %q", path, line)
			}
			continue
		}
		if commented {
			documented = append(documented, k)
		} else {
			set[k] = v
		}
	}
	return set, documented
}

func TestSystemdUnits(t *testing.T) {
	dir := filepath.Join(helpcheck.Root(), "deployments", "systemd")
	agentBin, volumeBin := binaries.Path(t, "uspace-agent"), binaries.Path(t, "uspace-volume")
	agentHelp := helpcheck.Run(t, agentBin, nil, "host")
	volumeHelp := helpcheck.Run(t, volumeBin, nil)

	t.Run("verify", func(t *testing.T) {
		analyze := systemdAnalyze(t)
		bins := map[string]string{"uspace-agent": agentBin, "uspace-volume": volumeBin}
		verify(t, analyze, filepath.Join(dir, "uspace-agent.service"), bins)
		verify(t, analyze, filepath.Join(dir, "uspace-volume.service"), bins)
	})

	envPath := filepath.Join(dir, "uspace.env")
	agent := loadUnit(t, filepath.Join(dir, "uspace-agent.service"))
	volume := loadUnit(t, filepath.Join(dir, "uspace-volume.service"))

	t.Run("agent", func(t *testing.T) {
		eff := execStart(t, agent, "uspace-agent", agentHelp, "host")
		common(t, agent)
		for _, flag := range []string{"shared-dir", "volume-root", "state-dir"} {
			if !writable(agent, eff[flag]) {
				t.Errorf("--%s %s is not writable under ProtectSystem=strict: no RuntimeDirectory=/StateDirectory=/ReadWritePaths= covers it", flag, eff[flag])
			}
		}
		// Reachable sockets: PrivateTmp would hide SPDK's socket in /var/tmp.
		if strings.HasPrefix(eff["spdk-socket"], "/var/tmp/") || strings.HasPrefix(eff["spdk-socket"], "/tmp/") {
			if agent.last("Service", "PrivateTmp") == "yes" {
				t.Errorf("PrivateTmp=yes hides the SPDK socket %s", eff["spdk-socket"])
			}
		}
		// mknod b 241/242: the capability, no PrivateDevices (it drops
		// CAP_MKNOD), and exactly mknod rights on 241:0..255 and 242:0..255.
		if caps := agent.words("Service", "CapabilityBoundingSet"); !slices.Equal(caps, []string{"CAP_MKNOD"}) {
			t.Errorf("CapabilityBoundingSet = %v, want only CAP_MKNOD", caps)
		}
		if agent.last("Service", "PrivateDevices") == "yes" {
			t.Error("PrivateDevices=yes drops CAP_MKNOD: the agent could not create the vhost-user block nodes")
		}
		if p := agent.last("Service", "DevicePolicy"); p != "closed" && p != "strict" {
			t.Errorf("DevicePolicy=%q, want closed (or strict) with the 241/242 allow list", p)
		}
		var want []string
		for _, major := range []int{241, 242} {
			for minor := range 256 {
				want = append(want, fmt.Sprintf("/dev/block/%d:%d m", major, minor))
			}
		}
		if got := agent.get("Service", "DeviceAllow"); !slices.Equal(got, want) {
			t.Errorf("DeviceAllow: %d entries, want exactly mknod (m) on /dev/block/241:0..255 and 242:0..255 (%d)", len(got), len(want))
		}
	})

	t.Run("volume", func(t *testing.T) {
		eff := execStart(t, volume, "uspace-volume", volumeHelp)
		common(t, volume)
		if !slices.Contains(volume.words("Unit", "Before"), "docker.service") {
			t.Error("uspace-volume.service must start Before=docker.service: Docker looks its volumes' driver up at start")
		}
		if d := runPath(eff["plugin-dir"]); d != "/run/docker/plugins" {
			t.Errorf("--plugin-dir %s: Docker looks for plugin sockets in /run/docker/plugins", eff["plugin-dir"])
		}
		for _, flag := range []string{"plugin-dir", "path"} {
			if !writable(volume, eff[flag]) {
				t.Errorf("--%s %s is not writable under ProtectSystem=strict", flag, eff[flag])
			}
		}
		// Same vhost-user root as the agent's.
		agentEff := execStart(t, agent, "uspace-agent", agentHelp, "host")
		if runPath(eff["path"]) != runPath(agentEff["volume-root"]) {
			t.Errorf("volume --path %s differs from the agent's --volume-root %s", eff["path"], agentEff["volume-root"])
		}
	})

	t.Run("envfile", func(t *testing.T) {
		for _, u := range []unit{agent, volume} {
			if f := strings.TrimPrefix(u.last("Service", "EnvironmentFile"), "-"); f != "/etc/uspace/uspace.env" {
				t.Errorf("EnvironmentFile=%s, want /etc/uspace/uspace.env (deployments/systemd/uspace.env)", f)
			}
		}
		set, documented := readEnvFile(t, envPath)
		known := agentHelp.Env()
		for k := range volumeHelp.Env() {
			known[k] = true
		}
		for _, k := range documented {
			if !known[k] {
				t.Errorf("uspace.env documents %s, which neither binary reads", k)
			}
		}
		// Every value set must show up as a flag default of a binary
		// started with this environment: the name is really read.
		var env []string
		for k, v := range set {
			if !known[k] {
				t.Errorf("uspace.env sets %s, which neither binary reads", k)
			}
			env = append(env, k+"="+v)
		}
		helps := []helpcheck.Help{helpcheck.Run(t, agentBin, env, "host"), helpcheck.Run(t, volumeBin, env)}
		for k, v := range set {
			found := false
			for _, h := range helps {
				for _, f := range h.Flags {
					if f.Default == v {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("uspace.env: %s=%s is not picked up by either binary (no flag defaults to it)", k, v)
			}
		}
	})

	t.Run("install.sh", func(t *testing.T) {
		bin, root := t.TempDir(), t.TempDir()
		for _, b := range []string{"uspace-agent", "uspace-etcd", "uspace-volume", "userspace"} {
			if err := os.Symlink(binaries.Path(t, b), filepath.Join(bin, b)); err != nil {
				t.Fatal(err)
			}
		}
		install := func() {
			cmd := exec.Command(filepath.Join(dir, "install.sh"))
			cmd.Env = append(os.Environ(), "BIN="+bin, "DESTDIR="+root)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("install.sh: %v\n%s", err, out)
			}
		}
		install()
		for p, want := range map[string]struct {
			src  string
			mode os.FileMode
		}{
			"usr/local/bin/uspace-agent":                             {agentBin, 0o755},
			"usr/local/bin/uspace-volume":                            {volumeBin, 0o755},
			"usr/local/bin/uspace-etcd":                              {binaries.Path(t, "uspace-etcd"), 0o755},
			"opt/cni/bin/userspace":                                  {binaries.Path(t, "userspace"), 0o755},
			"etc/systemd/system/uspace-agent.service":                {filepath.Join(dir, "uspace-agent.service"), 0o644},
			"etc/systemd/system/uspace-agent.service.d/devices.conf": {filepath.Join(dir, "uspace-agent.service.d", "devices.conf"), 0o644},
			"etc/systemd/system/uspace-volume.service":               {filepath.Join(dir, "uspace-volume.service"), 0o644},
			strings.TrimPrefix(strings.TrimPrefix(agent.last("Service", "EnvironmentFile"), "-"), "/"): {envPath, 0o600},
			strings.TrimPrefix(cni.DefaultConfigFile, "/"):                                             {filepath.Join(dir, "uspace.conf"), 0o644},
		} {
			got, err := os.ReadFile(filepath.Join(root, p))
			src, _ := os.ReadFile(want.src)
			fi, serr := os.Stat(filepath.Join(root, p))
			if err != nil || serr != nil || !bytes.Equal(got, src) || fi.Mode().Perm() != want.mode {
				t.Errorf("install.sh: /%s is not %s with mode %o (%v)", p, want.src, want.mode, err)
			}
		}
		// The site's settings survive a re-install.
		env := filepath.Join(root, "etc", "uspace", "uspace.env")
		if err := os.WriteFile(env, []byte("USPACE_HOST=edited\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		install()
		if b, _ := os.ReadFile(env); string(b) != "USPACE_HOST=edited\n" {
			t.Error("install.sh overwrote an edited /etc/uspace/uspace.env")
		}
	})

	t.Run("cni-conf", func(t *testing.T) {
		// The CNI plugin's /etc/uspace/uspace.conf says what uspace.env
		// says, and loads the way the plugin loads it.
		confPath := filepath.Join(dir, "uspace.conf")
		conf, err := cni.USpaceConf{}.Resolve(cni.Environment{
			Getenv: func(k string) string {
				if k == cni.EnvConfig {
					return confPath
				}
				return ""
			},
			ReadFile: os.ReadFile,
			Hostname: func() (string, error) { return "node1", nil },
		})
		if err != nil {
			t.Fatalf("uspace.conf does not load: %v", err)
		}
		set, _ := readEnvFile(t, envPath)
		for k, got := range map[string]string{
			"USPACE_ETCD_ENDPOINTS": strings.Join(conf.Etcd.Endpoints, ","),
			"USPACE_ETCD_CACERT":    conf.Etcd.CACert,
			"USPACE_ETCD_CERT":      conf.Etcd.Cert,
			"USPACE_ETCD_KEY":       conf.Etcd.Key,
		} {
			if set[k] != got {
				t.Errorf("uspace.conf has %q where uspace.env has %s=%q", got, k, set[k])
			}
		}
	})
}

// common: what both daemons' units must have.
func common(t *testing.T, u unit) {
	t.Helper()
	for k, want := range map[string]string{
		"Restart":         "on-failure",
		"NoNewPrivileges": "yes",
		"ProtectSystem":   "strict",
		"ProtectHome":     "yes",
	} {
		if got := u.last("Service", k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if !slices.Contains(u.words("Install", "WantedBy"), "multi-user.target") {
		t.Error("WantedBy= lacks multi-user.target: `systemctl enable` would not start it at boot")
	}
}
