package security_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/store"
)

// deployments/etcd/make-certs.sh makes what its README says, openssl
// verifies the chain, a second run keeps the CA and adds certificates, and
// etcd runs with them and the README's flags (JWT tokens included): root
// and a host log in by certificate, the host also by password.
func TestMakeCertsScript(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "deployments", "etcd", "make-certs.sh")
	dir := filepath.Join(harness.ShortTempDir(t), "pki")
	sc := newSecretScan(t)

	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(script, append([]string{dir}, args...)...).CombinedOutput()
		sc.add("make-certs.sh", string(out))
		if err != nil {
			t.Fatalf("make-certs.sh %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("root", "uspace-admin")
	ca, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	out := run("uspace-host-a")
	if again, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); string(again) != string(ca) || !strings.Contains(out, "using the CA") || !strings.Contains(out, "kept "+dir+"/server.pem") {
		t.Fatalf("second run did not keep the CA and server certificate:\n%s", out)
	}

	certs := []string{"server", "root", "uspace-admin", "uspace-host-a"}
	args := []string{"verify", "-CAfile", filepath.Join(dir, "ca.pem")}
	for _, c := range certs {
		args = append(args, filepath.Join(dir, c+".pem"))
	}
	if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil || strings.Count(string(out), ": OK") != len(certs) {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	for _, c := range certs {
		cert := parseCert(t, filepath.Join(dir, c+".pem"))
		key := filepath.Join(dir, c+"-key.pem")
		if info, err := os.Stat(key); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", key, err)
		}
		sc.secretFile(key)
		switch c {
		case "server":
			if !slices.ContainsFunc(cert.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP("127.0.0.1")) }) || !slices.Contains(cert.DNSNames, "localhost") {
				t.Errorf("server certificate SANs %v %v: want 127.0.0.1 and localhost", cert.IPAddresses, cert.DNSNames)
			}
		default:
			if cert.Subject.CommonName != c || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
				t.Errorf("%s: CN %q, usages %v", c, cert.Subject.CommonName, cert.ExtKeyUsage)
			}
		}
	}
	for _, f := range []string{"ca-key.pem", "jwt-key.pem"} {
		sc.secretFile(filepath.Join(dir, f))
	}

	// etcd with exactly the README's flags.
	e := runEtcd(t, sc, filepath.Dir(dir), tlsFiles{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		RootCert: filepath.Join(dir, "root.pem"), RootKey: filepath.Join(dir, "root-key.pem"),
	}, "--auth-token", "jwt,pub-key="+filepath.Join(dir, "jwt-pub.pem")+",priv-key="+filepath.Join(dir, "jwt-key.pem")+",sign-method=RS256,ttl=10m")
	ctx := context.Background()
	if _, err := rbac.EnsureRoot(ctx, e.Root, ""); err != nil {
		t.Fatal(err)
	}
	if err := rbac.EnableAuth(ctx, e.Root); err != nil {
		t.Fatal(err)
	}
	pw, _ := rbac.GeneratePassword()
	sc.secret(pw)
	pwFile := filepath.Join(dir, "uspace-host-a.password")
	if err := os.WriteFile(pwFile, []byte(pw), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.EnsureIdentity(ctx, e.Root, rbac.HostRole(hostA), rbac.UserSpec{Password: pw}); err != nil {
		t.Fatal(err)
	}
	byCert := e.certConfig(filepath.Join(dir, "uspace-host-a.pem"), filepath.Join(dir, "uspace-host-a-key.pem"))
	byPassword := e.certConfig(filepath.Join(dir, "uspace-admin.pem"), filepath.Join(dir, "uspace-admin-key.pem"))
	byPassword.Username, byPassword.PasswordFile = "uspace-host-a", pwFile
	for name, cfg := range map[string]store.Config{"certificate": byCert, "password (JWT token)": byPassword} {
		c, err := connect(cfg)
		if err != nil {
			sc.addErr(err)
			t.Fatalf("uspace-host-a by %s: %v", name, err)
		}
		scopes, _ := rbac.Scopes("uspace-host-a")
		for _, s := range scopes {
			res, err := rbac.Probe(ctx, c, s)
			if err != nil || !res.OK() {
				t.Errorf("uspace-host-a by %s on %s: can %s, should %s (%v)", name, s.Prefix, res.Got, s.Want, err)
			}
		}
		c.Close()
	}
}

func parseCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}
