package etcdconf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestBindFlags(t *testing.T) {
	t.Setenv(EnvEndpoints, "https://e1:2379, https://e2:2379")
	t.Setenv(EnvCACert, "/env/ca.pem")
	t.Setenv(EnvCert, "/env/cert.pem")
	t.Setenv(EnvKey, "/env/key.pem")
	t.Setenv(EnvUser, "uspace-host-h1")
	t.Setenv(EnvPasswordFile, "")
	t.Setenv(EnvPassword, "from-env")

	var cfg Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Endpoints:   []string{"https://e1:2379", "https://e2:2379"},
		DialTimeout: 5 * time.Second,
		CACert:      "/env/ca.pem", Cert: "/env/cert.pem", Key: "/env/key.pem",
		Username: "uspace-host-h1", Password: "from-env",
	}
	if fmt.Sprintf("%#v", cfg) != fmt.Sprintf("%#v", want) || cfg.Password != want.Password {
		t.Fatalf("defaults from env:\n  %v\nwant\n  %v", cfg, want)
	}

	err := fs.Parse([]string{"--etcd-endpoints=a:1,b:2", "--etcd-user=admin", "--etcd-password-file=/run/pw", "--etcd-dial-timeout=2s"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Endpoints, " ") != "a:1 b:2" || cfg.Username != "admin" || cfg.PasswordFile != "/run/pw" || cfg.DialTimeout != 2*time.Second {
		t.Fatalf("flags did not override: %v", cfg)
	}
	for _, name := range []string{"etcd-password", "password"} {
		if fs.Lookup(name) != nil {
			t.Fatalf("--%s exists: a password on the command line shows in ps", name)
		}
	}

	t.Setenv(EnvEndpoints, "")
	fs = pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Endpoints, " ") != "127.0.0.1:2379" {
		t.Fatalf("default endpoints %v", cfg.Endpoints)
	}
}

func TestConfigWithEnvJSONAndPrinting(t *testing.T) {
	t.Setenv(EnvEndpoints, "env:2379")
	t.Setenv(EnvCACert, "/env/ca.pem")
	t.Setenv(EnvCert, "")
	t.Setenv(EnvKey, "")
	t.Setenv(EnvUser, "env-user")
	t.Setenv(EnvPasswordFile, "/env/pw")
	t.Setenv(EnvPassword, "")

	// The CNI plugin's view: its network config names some fields, the
	// environment fills the rest; a password in the JSON is ignored.
	var fromJSON struct {
		Etcd Config `json:"etcd"`
	}
	err := json.Unmarshal([]byte(`{"etcd": {"endpoints": ["cfg:2379"], "dialTimeout": 1000000000, "caCert": "/cfg/ca.pem", "Username": "cfg-user", "password": "in-json"}}`), &fromJSON)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fromJSON.Etcd.WithEnv()
	want := Config{Endpoints: []string{"cfg:2379"}, DialTimeout: time.Second, CACert: "/cfg/ca.pem", Username: "cfg-user", PasswordFile: "/env/pw"}
	if fmt.Sprintf("%#v", cfg) != fmt.Sprintf("%#v", want) || cfg.Password != "" {
		t.Fatalf("got  %#v\nwant %#v", cfg, want)
	}
	if got := (Config{}).WithEnv(); strings.Join(got.Endpoints, ",") != "env:2379" || got.Username != "env-user" {
		t.Fatalf("empty config with env: %v", got)
	}

	cfg.Password = "hunter2"
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	printed := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, out)
	if strings.Contains(printed, "hunter2") {
		t.Fatalf("password printed: %s", printed)
	}
	if !strings.Contains(string(out), `"passwordFile":"/env/pw"`) || !strings.Contains(printed, "Password:[redacted]") {
		t.Fatalf("printed: %s", printed)
	}
}

// Bad credentials settings are refused naming the file or the field, never
// showing the password, before anything is dialled.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile := func(name, content string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const secret = "s3cret-password"
	open := writeFile("open-pw", secret+"\n", 0o644)
	groupRead := writeFile("group-pw", secret, 0o640)
	empty := writeFile("empty-pw", "\n", 0o600)
	good := writeFile("good-pw", secret, 0o600)
	check := func(c Config) error {
		if _, err := c.ResolvePassword(); err != nil {
			return err
		}
		_, err := c.TLSConfig()
		return err
	}

	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"password file readable by others", Config{Username: "u", PasswordFile: open},
			fmt.Sprintf("etcd password file %s has mode 0644: it must not be accessible by group or others (chmod 600 %s)", open, open)},
		{"password file readable by group", Config{Username: "u", PasswordFile: groupRead}, "has mode 0640"},
		{"empty password file", Config{Username: "u", PasswordFile: empty}, "etcd password file " + empty + " is empty"},
		{"missing password file", Config{Username: "u", PasswordFile: dir + "/nope"}, "opening etcd password file: open " + dir + "/nope: no such file or directory"},
		{"user without password", Config{Username: "u"}, `etcd user "u" given without a password`},
		{"password without user", Config{Password: secret}, "etcd password given without a user name"},
		{"password twice", Config{Username: "u", Password: secret, PasswordFile: good}, "etcd password given both in USPACE_ETCD_PASSWORD and as file " + good},
		{"missing CA", Config{CACert: dir + "/missing-ca.pem"}, "etcd TLS: reading CA: open " + dir + "/missing-ca.pem: no such file or directory"},
		{"CA that is no certificate", Config{CACert: good}, "etcd TLS: CA file " + good + " holds no PEM certificate"},
		{"cert without key", Config{Cert: dir + "/c.pem"}, `etcd TLS: client certificate ("` + dir + `/c.pem") and key ("") must be given together`},
		{"missing client cert", Config{Cert: dir + "/c.pem", Key: dir + "/k.pem"}, "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := check(tc.cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error reveals the password: %q", err)
			}
		})
	}
}
