package security_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// uspacectl runs the real binary as etcd root (by certificate) plus args,
// with env added to a USPACE_ETCD_*-free environment.
type uspacectl struct {
	t   *testing.T
	bin string
	e   *secureEtcd
	sc  *secretScan
}

func (u *uspacectl) run(wantOK bool, env []string, args ...string) string {
	u.t.Helper()
	root := []string{"--etcd-endpoints", strings.Join(u.e.Endpoints, ","), "--etcd-cacert", u.e.CA,
		"--etcd-cert", u.e.RootCert, "--etcd-key", u.e.RootKey, "--etcd-dial-timeout", "2s"}
	if env != nil {
		root = nil // the identity comes from env alone
	}
	cmd := exec.Command(u.bin, append(root, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "USPACE_ETCD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	u.sc.add("uspacectl "+strings.Join(args, " "), string(out))
	if (err == nil) != wantOK {
		u.t.Fatalf("uspacectl %s: %v (want success %v)\n%s", strings.Join(args, " "), err, wantOK, out)
	}
	return string(out)
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}

func noLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if strings.Contains(out, l) {
			t.Errorf("output has %q:\n%s", l, out)
		}
	}
}

// `uspacectl auth` end to end on etcd with TLS and client-certificate auth:
// init refuses to enable auth without a root user, then creates root and
// uspace-admin and enables auth; add-host creates exactly the table's roles
// and users and 0600 credential files; everything is idempotent; check
// passes for every identity (by password, by certificate, and from the
// env file as written), fails on drift, and add-host repairs it; a lost
// password file gets a new password; remove-host removes users, roles and
// files and leaves the other host alone. No secret in any output.
func TestAuthCommand(t *testing.T) {
	t.Parallel()
	sc := newSecretScan(t)
	e := startSecureEtcd(t, sc)
	u := &uspacectl{t: t, bin: binaries.Path(t, "uspacectl"), e: e, sc: sc}
	ctx := context.Background()
	creds := filepath.Join(e.Dir, "creds")
	credFile := func(id, ext string) string { return filepath.Join(creds, id+"."+ext) }

	out := u.run(false, nil, "auth", "init", "--enable", "--out", creds)
	wantLines(t, out, "etcd has no root user, which it needs before auth can be enabled")
	if on, err := rbac.AuthEnabled(ctx, e.Root); err != nil || on {
		t.Fatalf("auth enabled after a refused init: %v %v", on, err)
	}

	rootPW, _ := rbac.GeneratePassword()
	sc.secret(rootPW)
	rootPWFile := filepath.Join(e.Dir, "root.password")
	if err := os.WriteFile(rootPWFile, []byte(rootPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = u.run(true, nil, "auth", "init", "--enable", "--out", creds, "--root-password-file", rootPWFile)
	wantLines(t, out, "created user root\n", "user root: granted role root",
		"wrote "+credFile("uspace-admin", "password")+" (mode 0600, new random password)",
		"created role uspace-admin", "role uspace-admin: granted readwrite /uspace/\n",
		"created user uspace-admin", "user uspace-admin: granted role uspace-admin", "enabled etcd auth")
	out = u.run(true, nil, "auth", "init", "--enable", "--out", creds)
	wantLines(t, out, "uspace-admin: role and user already as wanted", "etcd auth is enabled")
	noLines(t, out, "created", "granted", "set the password")

	for _, h := range []string{hostA, hostB} {
		out = u.run(true, nil, "auth", "add-host", h, "--out", creds)
		wantLines(t, out,
			"role uspace-host-"+h+": granted readwrite "+schema.HostPrefix(h)+"\n",
			"role uspace-host-"+h+": granted readwrite "+schema.StatusHostPrefix(h)+"\n",
			"role uspace-host-"+h+": granted read "+schema.NetworksPrefix()+"\n",
			"role uspace-host-"+h+": granted read "+schema.MembersPrefix()+"\n",
			"role uspace-host-"+h+": granted readwrite "+schema.MemberHostPrefix(h)+"\n",
			"role uspace-containers-"+h+": granted read "+schema.ContainersPrefix(h)+"\n",
			"role uspace-containers-"+h+": granted readwrite "+schema.StatusContainersPrefix(h)+"\n",
			"user uspace-host-"+h+": granted role uspace-host-"+h+"\n",
			"user uspace-containers-"+h+": granted role uspace-containers-"+h+"\n",
			"wrote "+credFile("uspace-host-"+h, "env")+"\n")
	}
	out = u.run(true, nil, "auth", "add-host", hostA, "--out", creds)
	wantLines(t, out, "uspace-host-a: role and user already as wanted", "uspace-containers-a: role and user already as wanted")
	noLines(t, out, "created", "granted", "revoked", "set the password")

	ids := []string{"uspace-admin"}
	for _, h := range []string{hostA, hostB} {
		ids = append(ids, rbac.HostIdentity(h), rbac.ContainersIdentity(h))
	}
	if info, err := os.Stat(creds); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("credential directory: %v %v", info.Mode(), err)
	}
	var checkArgs []string
	for _, id := range ids {
		for _, f := range []string{credFile(id, "password"), credFile(id, "env")} {
			if info, err := os.Stat(f); err != nil || info.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v", f, err)
			}
		}
		sc.secretFile(credFile(id, "password"))
		checkArgs = append(checkArgs, "--identity", id+"="+credFile(id, "password"))
	}
	env, _ := os.ReadFile(credFile("uspace-host-a", "env"))
	wantLines(t, string(env), "\nUSPACE_ETCD_USER=uspace-host-a\n", "\nUSPACE_ETCD_PASSWORD_FILE="+credFile("uspace-host-a", "password")+"\n",
		"\nUSPACE_ETCD_ENDPOINTS="+e.Endpoints[0]+"\n", "\nUSPACE_ETCD_CACERT="+e.CA+"\n")

	hostCert, hostKey := e.PKI.issue("uspace-host-a", "uspace-host-a", certOpts{})
	sc.secretFile(hostKey)
	out = u.run(true, nil, append(append([]string{"auth", "check"}, checkArgs...), "--identity-cert", "uspace-host-a="+hostCert+","+hostKey)...)
	if n := strings.Count(out, "exactly as ARCHITECTURE.md's Security table says"); n != len(ids)+1 {
		t.Errorf("%d identities checked ok, want %d:\n%s", n, len(ids)+1, out)
	}
	noLines(t, out, "FAIL")
	if kvs, _, err := e.Root.List(ctx, "/"); err != nil || len(kvs) != 0 {
		t.Errorf("check left %d keys (%v)", len(kvs), err)
	}

	// The env file as written, plus a client certificate, is all a host
	// needs: check the identity the shared flags log in as.
	var envVars []string
	for _, l := range strings.Split(string(env), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			envVars = append(envVars, l)
		}
	}
	envVars = append(envVars, store.EnvCert+"="+e.AnonCert, store.EnvKey+"="+e.AnonKey)
	out = u.run(true, envVars, "auth", "check")
	wantLines(t, out, "identity uspace-host-a (--etcd-user):", "identity uspace-host-a: ok")

	// Drift: host a may suddenly read and write host ab. check fails and
	// names it; add-host puts it back.
	if _, err := e.Root.Etcd().RoleGrantPermission(ctx, "uspace-host-a", schema.HostPrefix(hostB), clientv3.GetPrefixRangeEnd(schema.HostPrefix(hostB)), clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
		t.Fatal(err)
	}
	out = u.run(false, nil, "auth", "check", "--identity", "uspace-host-a="+credFile("uspace-host-a", "password"))
	wantLines(t, out, "FAIL: can read but must not; can write but must not", "identity uspace-host-a: FAIL",
		"FAIL: role uspace-host-a holds readwrite "+schema.HostPrefix(hostB)+", which it must not",
		"identities that can do more or less than ARCHITECTURE.md's Security table says: uspace-host-a (")
	var failures int
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "FAIL: can") {
			failures++
			if !strings.HasPrefix(strings.TrimSpace(l), schema.HostPrefix(hostB)) {
				t.Errorf("unexpected failure line %q", l)
			}
		}
	}
	if failures != 4 { // hosts/ab/ and its interfaces/, volumes/, containers/
		t.Errorf("%d scopes failed, want the 4 under %s:\n%s", failures, schema.HostPrefix(hostB), out)
	}
	out = u.run(true, nil, "auth", "add-host", hostA, "--out", creds)
	wantLines(t, out, "role uspace-host-a: revoked readwrite prefix "+schema.HostPrefix(hostB)+"\n")
	u.run(true, nil, "auth", "check", "--identity", "uspace-host-a="+credFile("uspace-host-a", "password"))

	// A lost password file: a new password is made and set; the old one
	// stops working.
	oldPW := filepath.Join(e.Dir, "old-containers-a.password")
	if err := os.Rename(credFile("uspace-containers-a", "password"), oldPW); err != nil {
		t.Fatal(err)
	}
	out = u.run(true, nil, "auth", "add-host", hostA, "--out", creds)
	wantLines(t, out, "wrote "+credFile("uspace-containers-a", "password")+" (mode 0600, new random password)", "set the password of user uspace-containers-a")
	sc.secretFile(credFile("uspace-containers-a", "password"))
	out = u.run(false, nil, "auth", "check", "--identity", "uspace-containers-a="+oldPW, "--identity", "uspace-containers-a="+credFile("uspace-containers-a", "password"))
	wantLines(t, out, "FAIL: cannot log in: ", "authentication failed", "identity uspace-containers-a: ok")

	// Remove host a: users, roles, files. Host ab is untouched.
	keep := filepath.Join(e.Dir, "old-host-a.password")
	if b, err := os.ReadFile(credFile("uspace-host-a", "password")); err != nil || os.WriteFile(keep, b, 0o600) != nil {
		t.Fatal(err)
	}
	out = u.run(true, nil, "auth", "remove-host", hostA, "--out", creds)
	wantLines(t, out, "deleted user uspace-host-a\n", "deleted role uspace-host-a\n", "deleted user uspace-containers-a\n", "deleted role uspace-containers-a\n",
		"removed "+credFile("uspace-host-a", "password")+"\n", "removed "+credFile("uspace-containers-a", "env")+"\n")
	for _, name := range []string{"uspace-host-a", "uspace-containers-a"} {
		if ok, err := rbac.UserExists(ctx, e.Root, name); err != nil || ok {
			t.Errorf("user %s after remove-host: %v %v", name, ok, err)
		}
		if _, err := rbac.RoleGrants(ctx, e.Root, name); err == nil || !strings.Contains(err.Error(), "role name not found") {
			t.Errorf("role %s after remove-host: %v", name, err)
		}
		if _, err := os.Stat(credFile(name, "password")); !os.IsNotExist(err) {
			t.Errorf("%s: %v", credFile(name, "password"), err)
		}
	}
	out = u.run(false, nil, "auth", "check", "--identity", "uspace-host-a="+keep)
	wantLines(t, out, "FAIL: cannot log in: ", "authentication failed")
	out = u.run(true, nil, "auth", "remove-host", hostA)
	wantLines(t, out, "uspace-host-a: no such user or role", "uspace-containers-a: no such user or role")
	u.run(true, nil, "auth", "check",
		"--identity", "uspace-host-ab="+credFile("uspace-host-ab", "password"),
		"--identity", "uspace-containers-ab="+credFile("uspace-containers-ab", "password"))

	// Bad input names what is wrong.
	out = u.run(false, nil, "auth", "add-host", "../x", "--out", creds)
	wantLines(t, out, "host")
	out = u.run(false, nil, "auth", "check", "--identity", "nobody="+keep)
	wantLines(t, out, `identity "nobody" is not a uspace identity`)
}
