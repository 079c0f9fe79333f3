package rbac

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/store"
	"github.com/uspace-io/uspace/store/embedetcd"
)

// ARCHITECTURE.md's Security table, written out by hand so that a change to the
// roles in code has to change this too.
func TestRolesMatchDesign(t *testing.T) {
	grants := func(r Role) string {
		var s []string
		for _, g := range r.Grants {
			s = append(s, g.String())
		}
		slices.Sort(s)
		return strings.Join(s, "; ")
	}
	for _, tc := range []struct {
		role Role
		want string
	}{
		{AdminRole(), "readwrite /uspace/"},
		{HostRole("a"), "read /uspace/v1/members/; read /uspace/v1/networks/; readwrite /uspace/v1/hosts/a/; readwrite /uspace/v1/members/a/; readwrite /uspace/v1/status/hosts/a/"},
		{ContainersRole("a"), "read /uspace/v1/hosts/a/containers/; readwrite /uspace/v1/status/hosts/a/containers/"},
	} {
		if got := grants(tc.role); got != tc.want {
			t.Errorf("role %s: %s\nwant %s", tc.role.Name, got, tc.want)
		}
	}
	if HostRole("a").Name != "uspace-host-a" || ContainersRole("a").Name != "uspace-containers-a" {
		t.Errorf("names: %s %s", HostRole("a").Name, ContainersRole("a").Name)
	}

	for name, want := range map[string]string{
		"uspace-admin":          "uspace-admin",
		"uspace-host-n1.x":      "uspace-host-n1.x",
		"uspace-containers-n-2": "uspace-containers-n-2",
	} {
		if r, err := RoleOf(name); err != nil || r.Name != want {
			t.Errorf("RoleOf(%q) = %v, %v", name, r.Name, err)
		}
	}
	for _, bad := range []string{"root", "uspace-host-", "uspace-host-a/b", "uspace-containers-..", "uspace-hosts-a", ""} {
		if _, err := RoleOf(bad); err == nil {
			t.Errorf("RoleOf(%q) accepted", bad)
		}
	}
}

// What `auth check` expects of each identity, scope by scope: the table
// again, seen from the probes (a prefix read and a write of a scratch key).
func TestScopes(t *testing.T) {
	want := map[string]map[string]Access{
		"uspace-host-a": {
			"/uspace/":                               NoAccess,
			"/uspace/v1/":                            NoAccess,
			"/uspace/v1/networks/":                   Read,
			"/uspace/v1/hosts/":                      NoAccess,
			"/uspace/v1/status/":                     NoAccess,
			"/uspace/v1/hosts/a/":                    ReadWrite,
			"/uspace/v1/hosts/a/interfaces/":         ReadWrite,
			"/uspace/v1/hosts/a/volumes/":            ReadWrite,
			"/uspace/v1/hosts/a/containers/":         ReadWrite,
			"/uspace/v1/status/hosts/a/":             ReadWrite,
			"/uspace/v1/status/hosts/a/containers/":  ReadWrite,
			"/uspace/v1/hosts/a0/":                   NoAccess,
			"/uspace/v1/hosts/a0/interfaces/":        NoAccess,
			"/uspace/v1/hosts/a0/volumes/":           NoAccess,
			"/uspace/v1/hosts/a0/containers/":        NoAccess,
			"/uspace/v1/status/hosts/a0/":            NoAccess,
			"/uspace/v1/status/hosts/a0/containers/": NoAccess,
			// Every host reads every membership, writes only its own.
			"/uspace/v1/members/":    Read,
			"/uspace/v1/members/a/":  ReadWrite,
			"/uspace/v1/members/a0/": Read,
		},
		"uspace-containers-a": {
			"/uspace/":                               NoAccess,
			"/uspace/v1/":                            NoAccess,
			"/uspace/v1/networks/":                   NoAccess,
			"/uspace/v1/hosts/":                      NoAccess,
			"/uspace/v1/status/":                     NoAccess,
			"/uspace/v1/hosts/a/":                    NoAccess,
			"/uspace/v1/hosts/a/interfaces/":         NoAccess,
			"/uspace/v1/hosts/a/volumes/":            NoAccess,
			"/uspace/v1/hosts/a/containers/":         Read,
			"/uspace/v1/status/hosts/a/":             NoAccess,
			"/uspace/v1/status/hosts/a/containers/":  ReadWrite,
			"/uspace/v1/hosts/a0/":                   NoAccess,
			"/uspace/v1/hosts/a0/interfaces/":        NoAccess,
			"/uspace/v1/hosts/a0/volumes/":           NoAccess,
			"/uspace/v1/hosts/a0/containers/":        NoAccess,
			"/uspace/v1/status/hosts/a0/":            NoAccess,
			"/uspace/v1/status/hosts/a0/containers/": NoAccess,
			"/uspace/v1/members/":                    NoAccess,
			"/uspace/v1/members/a/":                  NoAccess,
			"/uspace/v1/members/a0/":                 NoAccess,
		},
		"uspace-admin": {
			"/uspace/v1/members/":  ReadWrite,
			"/uspace/":             ReadWrite,
			"/uspace/v1/":          ReadWrite,
			"/uspace/v1/networks/": ReadWrite,
			"/uspace/v1/hosts/":    ReadWrite,
			"/uspace/v1/status/":   ReadWrite,
		},
	}
	for identity, want := range want {
		scopes, err := Scopes(identity)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]Access{}
		for _, s := range scopes {
			got[s.Prefix] = s.Want
			if s.ProbeKey() != s.Prefix+".uspace-auth-check" {
				t.Errorf("probe key %s", s.ProbeKey())
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n got %v\nwant %v", identity, got, want)
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	a, err := GeneratePassword()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GeneratePassword()
	if len(a) != 43 || a == b || strings.ContainsAny(a, "=+/ \n") {
		t.Fatalf("passwords %q %q: want 43 distinct base64url characters", a, b)
	}
}

// Against a real (embedded) etcd with auth enabled: roles and users end up
// with exactly the wanted permissions whatever was there before, a second
// run changes nothing, etcd enforces them, and removal removes.
func TestEnsureIdentities(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	defer e.Close()
	ctx := context.Background()
	eps := e.Endpoints()
	dir := t.TempDir()
	pwFile := func(name, pw string) string {
		p := filepath.Join(dir, name+".password")
		if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	connectAs := func(user, pw string) (*store.Client, error) {
		return store.Connect(ctx, store.Config{Endpoints: eps, Username: user, PasswordFile: pwFile(user, pw)})
	}

	bootstrap, err := store.Connect(ctx, store.Config{Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	defer bootstrap.Close()
	rootPW, _ := GeneratePassword()
	if done, err := EnsureRoot(ctx, bootstrap, rootPW); err != nil || fmt.Sprint(done) != "[created user root user root: granted role root]" {
		t.Fatalf("EnsureRoot: %v %v", done, err)
	}
	if err := EnableAuth(ctx, bootstrap); err != nil {
		t.Fatal(err)
	}
	root, err := connectAs(RootUser, rootPW)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if on, err := AuthEnabled(ctx, root); err != nil || !on {
		t.Fatalf("auth enabled: %v %v", on, err)
	}
	if done, err := EnsureRoot(ctx, root, ""); err != nil || len(done) != 0 {
		t.Fatalf("EnsureRoot again: %v %v", done, err)
	}

	hostPW, _ := GeneratePassword()
	ctrPW, _ := GeneratePassword()
	var reported []string // everything Ensure and Remove said, for the secrets check
	ensure := func() []string {
		t.Helper()
		var all []string
		for _, id := range []struct {
			r  Role
			pw string
		}{{HostRole("a"), hostPW}, {ContainersRole("a"), ctrPW}} {
			done, err := EnsureIdentity(ctx, root, id.r, UserSpec{Password: id.pw})
			if err != nil {
				t.Fatalf("EnsureIdentity %s: %v", id.r.Name, err)
			}
			all = append(all, done...)
		}
		reported = append(reported, all...)
		return all
	}
	done := ensure()
	if len(done) != 2+5+2+2+2 {
		t.Fatalf("first run did: %q", done)
	}
	if again := ensure(); len(again) != 0 {
		t.Fatalf("second run changed: %q", again)
	}

	// Drift: an extra grant, a widened one, an extra role on the user.
	et := root.Etcd()
	mustAuth := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustAuth(et.RoleGrantPermission(ctx, "uspace-host-a", "/uspace/", clientv3.GetPrefixRangeEnd("/uspace/"), clientv3.PermissionType(clientv3.PermReadWrite)))
	mustAuth(et.RoleGrantPermission(ctx, "uspace-host-a", "/uspace/v1/networks/", clientv3.GetPrefixRangeEnd("/uspace/v1/networks/"), clientv3.PermissionType(clientv3.PermReadWrite)))
	mustAuth(et.RoleGrantPermission(ctx, "uspace-containers-a", "/uspace/v1/hosts/a/x", "", clientv3.PermissionType(clientv3.PermWrite)))
	mustAuth(et.RoleAdd(ctx, "extra"))
	mustAuth(et.UserGrantRole(ctx, "uspace-containers-a", "extra"))
	problems, err := Audit(ctx, root, "uspace-host-a")
	if err != nil || len(problems) != 3 {
		t.Fatalf("audit after drift: %q %v", problems, err)
	}
	if problems, err := Audit(ctx, root, "uspace-containers-a"); err != nil || strings.Join(problems, "; ") !=
		"role uspace-containers-a holds write key /uspace/v1/hosts/a/x, which it must not; user uspace-containers-a holds role extra too" {
		t.Fatalf("audit after drift: %q %v", problems, err)
	}
	done = ensure()
	slices.Sort(done)
	want := []string{
		"role uspace-containers-a: revoked write key /uspace/v1/hosts/a/x",
		"role uspace-host-a: granted read /uspace/v1/networks/",
		"role uspace-host-a: revoked readwrite prefix /uspace/",
		"user uspace-containers-a: revoked role extra",
	}
	slices.Sort(want)
	if !slices.Equal(done, want) {
		t.Fatalf("repair did:\n  %s\nwant\n  %s", strings.Join(done, "\n  "), strings.Join(want, "\n  "))
	}
	for _, r := range []Role{HostRole("a"), ContainersRole("a")} {
		if problems, err := Audit(ctx, root, r.Name); err != nil || len(problems) != 0 {
			t.Fatalf("audit after repair: %q %v", problems, err)
		}
		got, err := RoleGrants(ctx, root, r.Name)
		if err != nil {
			t.Fatal(err)
		}
		wantG := slices.Clone(r.Grants)
		slices.SortFunc(wantG, func(a, b Grant) int { return strings.Compare(a.Prefix, b.Prefix) })
		if !slices.Equal(got, wantG) {
			t.Fatalf("role %s holds %v, want %v", r.Name, got, wantG)
		}
	}

	// etcd enforces exactly the table.
	for _, id := range []struct{ user, pw string }{{"uspace-host-a", hostPW}, {"uspace-containers-a", ctrPW}} {
		c, err := connectAs(id.user, id.pw)
		if err != nil {
			t.Fatalf("connect as %s: %v", id.user, err)
		}
		scopes, _ := Scopes(id.user)
		for _, s := range scopes {
			res, err := Probe(ctx, c, s)
			if err != nil {
				t.Fatalf("%s probe %s: %v", id.user, s.Prefix, err)
			}
			if !res.OK() || res.Leftover {
				t.Errorf("%s on %s: can %s, should %s (read: %v, write: %v, delete: %v)", id.user, s.Prefix, res.Got, res.Want, res.ReadErr, res.WriteErr, res.DeleteErr)
			}
		}
		c.Close()
	}
	if kvs, _, err := root.List(ctx, "/"); err != nil || len(kvs) != 0 {
		t.Fatalf("probes left keys: %v %v", kvs, err)
	}

	// A password change takes, and only when asked.
	newPW, _ := GeneratePassword()
	if done, err := EnsureIdentity(ctx, root, HostRole("a"), UserSpec{Password: newPW}); err != nil || len(done) != 0 {
		t.Fatalf("ensure without SetPassword: %v %v", done, err)
	}
	if done, err := EnsureIdentity(ctx, root, HostRole("a"), UserSpec{Password: newPW, SetPassword: true}); err != nil || fmt.Sprint(done) != "[set the password of user uspace-host-a]" {
		t.Fatalf("ensure with SetPassword: %v %v", done, err)
	}
	if done, err := EnsureIdentity(ctx, root, HostRole("a"), UserSpec{Password: newPW, SetPassword: true}); err != nil || len(done) != 0 {
		t.Fatalf("ensure with the password it has: %v %v", done, err)
	}
	if c, err := connectAs("uspace-host-a", newPW); err != nil {
		t.Fatalf("new password refused: %v", err)
	} else {
		c.Close()
	}

	for _, name := range []string{"uspace-host-a", "uspace-containers-a"} {
		done, err := RemoveIdentity(ctx, root, name)
		if err != nil || len(done) != 2 {
			t.Fatalf("remove %s: %v %v", name, done, err)
		}
		reported = append(reported, done...)
		if done, err := RemoveIdentity(ctx, root, name); err != nil || len(done) != 0 {
			t.Fatalf("remove %s again: %v %v", name, done, err)
		}
	}
	if _, err := connectAs("uspace-host-a", newPW); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("removed user connects: %v", err)
	}
	for _, secret := range []string{rootPW, hostPW, ctrPW, newPW} {
		if strings.Contains(strings.Join(reported, "\n"), secret) {
			t.Fatal("a password appears in what Ensure reported")
		}
	}
}

// startEmbedded runs a real etcd in the test process on free ports.
func startEmbedded(t *testing.T, dir string) *embedetcd.Etcd {
	t.Helper()
	e, err := embedetcd.Start(context.Background(), embedetcd.Config{Dir: dir, ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
