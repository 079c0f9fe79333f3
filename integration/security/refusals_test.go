package security_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Host "ab" is host "a"'s neighbour: its name starts with a's, so a grant
// on a prefix without its closing "/" would leak into it.
const (
	hostA = "a"
	hostB = "ab"
)

var logins = []struct {
	name   string
	byCert bool
}{{"password", false}, {"client certificate", true}}

// seed writes keys as root and returns them with their mod revisions, to
// prove later that nothing was touched.
func seed(t *testing.T, e *secureEtcd, keys ...string) map[string]int64 {
	t.Helper()
	var ops []store.Op
	for _, k := range keys {
		ops = append(ops, store.Op{Key: k, Value: []byte(`{"seeded":"` + k + `"}`)})
	}
	if _, err := e.Root.Apply(context.Background(), ops...); err != nil {
		t.Fatal(err)
	}
	return revisions(t, e, keys...)
}

func revisions(t *testing.T, e *secureEtcd, keys ...string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, k := range keys {
		kv, err := e.Root.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if kv != nil {
			out[k] = kv.ModRevision
		}
	}
	return out
}

// untouched fails unless the keys are exactly as seeded and nothing else
// exists outside allowed prefixes.
func untouched(t *testing.T, e *secureEtcd, seeded map[string]int64, written ...string) {
	t.Helper()
	var keys []string
	for k := range seeded {
		keys = append(keys, k)
	}
	if got := revisions(t, e, keys...); fmt.Sprint(got) != fmt.Sprint(seeded) {
		t.Errorf("seeded keys changed:\n got %v\nwant %v", got, seeded)
	}
	for _, k := range written {
		if kv, err := e.Root.Get(context.Background(), k); err != nil || kv != nil {
			t.Errorf("refused write of %s is in etcd: %v %v", k, kv, err)
		}
	}
}

// refused fails unless err is etcd's permission refusal.
func refused(t *testing.T, sc *secretScan, what string, err error) {
	t.Helper()
	sc.addErr(err)
	if err == nil {
		t.Errorf("%s: allowed, must be refused", what)
	} else if !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("%s: failed with %v, want etcd's permission denied", what, err)
	}
}

func allowed(t *testing.T, sc *secretScan, what string, err error) {
	t.Helper()
	sc.addErr(err)
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// tryWrites puts and deletes each key, each in its own request, and
// expects every one to be refused.
func tryWrites(t *testing.T, sc *secretScan, c *store.Client, keys ...string) {
	t.Helper()
	ctx := context.Background()
	for _, k := range keys {
		_, err := c.Apply(ctx, store.Op{Key: k, Value: []byte(`{"apiVersion":"uspace.io/v1","kind":"Forged"}`)})
		refused(t, sc, "put "+k, err)
		_, err = c.Apply(ctx, store.Op{Key: k, Delete: true})
		refused(t, sc, "delete "+k, err)
		_, err = c.Etcd().Delete(ctx, k, clientv3.WithPrefix())
		refused(t, sc, "delete prefix "+k, err)
	}
}

// tryReads reads each key and lists each as a prefix, expecting refusals;
// a watch on it is refused too.
func tryReads(t *testing.T, sc *secretScan, c *store.Client, keys ...string) {
	t.Helper()
	ctx := context.Background()
	for _, k := range keys {
		_, err := c.Get(ctx, k)
		refused(t, sc, "get "+k, err)
		_, _, err = c.List(ctx, k)
		refused(t, sc, "list "+k, err)
		refused(t, sc, "watch "+k, watchErr(c, k))
	}
}

// watchErr opens a prefix watch and returns the error it is cancelled with
// (nil when it stays open).
func watchErr(c *store.Client, prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	wch := c.Etcd().Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.Created {
			return nil
		}
	}
	return errors.New("watch closed without a response")
}

// Host a's credentials: a's own scope works, including a lease-bound
// registration, a watch and the statuses; everything of host ab, any
// network write and any read outside a's scope are refused; a transaction
// mixing a's keys with ab's is refused whole. Every host's memberships of
// networks that span hosts can be read and watched, only a's own written.
// Proved for both ways to log in. Nothing of ab's changes.
func TestHostCredentials(t *testing.T) {
	t.Parallel()
	sc := newSecretScan(t)
	e := startSecureEtcd(t, sc)
	e.enableAuth()
	a := e.addIdentity(rbac.HostRole(hostA))
	e.addIdentity(rbac.HostRole(hostB))
	ctx := context.Background()

	bKeys := []string{
		schema.AgentKey(hostB),
		schema.InterfaceKey(hostB, "c1", "eth0"),
		schema.VolumeKey(hostB, "vol1"),
		schema.ContainerMetaKey(hostB, "c1"),
		schema.ContainerInterfaceKey(hostB, "c1", "eth0"),
		schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: hostB, Container: "c1", Interface: "eth0"}),
		schema.StatusKey(schema.Key{Kind: schema.KindVolumeKey, Host: hostB, Volume: "vol1"}),
		schema.StatusKey(schema.Key{Kind: schema.KindContainerInterfaceKey, Host: hostB, Container: "c1", Interface: "eth0"}),
	}
	network := schema.NetworkKey("net1")
	bMember := schema.MemberKey(hostB, "net1")
	seeded := seed(t, e, append(bKeys, network, bMember)...)

	own := []string{
		schema.InterfaceKey(hostA, "c1", "eth0"),
		schema.VolumeKey(hostA, "vol1"),
		schema.ContainerMetaKey(hostA, "c1"),
		schema.ContainerInterfaceKey(hostA, "c1", "eth0"),
		schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: hostA, Container: "c1", Interface: "eth0"}),
		schema.StatusKey(schema.Key{Kind: schema.KindVolumeKey, Host: hostA, Volume: "vol1"}),
		schema.MemberKey(hostA, "net1"),
	}
	for _, login := range logins {
		t.Run(login.name, func(t *testing.T) {
			c := e.login(a, login.byCert)

			// Its own scope, the way the CNI plugin, the volume driver and
			// the host agent use it.
			var ops []store.Op
			for _, k := range own {
				ops = append(ops, store.Op{Key: k, Value: []byte(`{}`), Guard: store.CreateOnly()})
			}
			_, err := c.Apply(ctx, ops...)
			allowed(t, sc, "one transaction writing a's intents and statuses", err)
			for _, p := range []string{schema.HostPrefix(hostA), schema.StatusHostPrefix(hostA), schema.NetworksPrefix(), schema.MembersPrefix()} {
				kvs, _, err := c.List(ctx, p)
				allowed(t, sc, "list "+p, err)
				allowed(t, sc, "watch "+p, watchErr(c, p))
				if p != schema.NetworksPrefix() && len(kvs) == 0 {
					t.Errorf("list %s: nothing", p)
				}
			}
			if kv, err := c.Get(ctx, network); err != nil || kv == nil {
				t.Errorf("get %s: %v %v", network, kv, err)
			}
			lease, err := c.Etcd().Grant(ctx, 5)
			allowed(t, sc, "lease grant", err)
			if err == nil {
				_, err = c.Etcd().Put(ctx, schema.AgentKey(hostA), "{}", clientv3.WithLease(lease.ID))
				allowed(t, sc, "lease-bound registration", err)
				_, err = c.Etcd().Revoke(ctx, lease.ID)
				allowed(t, sc, "lease revoke", err)
			}
			ops = ops[:0]
			for _, k := range own {
				ops = append(ops, store.Op{Key: k, Delete: true})
			}
			_, err = c.Apply(ctx, ops...)
			allowed(t, sc, "deleting a's keys", err)

			// Host ab: no write, no delete, no read, no watch.
			tryWrites(t, sc, c, append(bKeys, schema.HostPrefix(hostB), schema.StatusHostPrefix(hostB))...)
			tryReads(t, sc, c, append(bKeys, schema.HostPrefix(hostB), schema.StatusHostPrefix(hostB), schema.ContainersPrefix(hostB))...)
			// Nor ab's membership (it may read it: tunnels to ab come from
			// it), nor anything above its own prefixes, nor a network.
			tryWrites(t, sc, c, bMember, schema.MemberKey(hostB, "net2"), schema.MemberHostPrefix(hostB), schema.MembersPrefix())
			tryWrites(t, sc, c, network, schema.NetworkKey("net2"))
			tryReads(t, sc, c, schema.HostsPrefix(), schema.StatusPrefix(), schema.Root)

			// A transaction mixing a's key and ab's is refused whole.
			mixed := schema.InterfaceKey(hostA, "c9", "eth0")
			_, err = c.Apply(ctx,
				store.Op{Key: mixed, Value: []byte(`{}`)},
				store.Op{Key: schema.InterfaceKey(hostB, "c9", "eth0"), Value: []byte(`{}`)})
			refused(t, sc, "transaction writing a's and ab's keys", err)

			// An agent with a's credentials watching ab's intents stops
			// with the refusal instead of retrying forever.
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = c.ListWatch(wctx, schema.HostPrefix(hostB), func(store.Event) error { return nil })
			cancel()
			refused(t, sc, "ListWatch "+schema.HostPrefix(hostB), err)

			untouched(t, e, seeded, mixed, schema.InterfaceKey(hostB, "c9", "eth0"), schema.NetworkKey("net2"), schema.MemberKey(hostB, "net2"))
		})
	}
	if kvs, _, err := e.Root.List(ctx, schema.HostPrefix(hostA)); err != nil || len(kvs) != 0 {
		t.Errorf("a's scope after the test: %v %v", kvs, err)
	}
}

// Container credentials of host a: the container intents of a can be read
// and watched and their statuses written; no intent can be written or
// deleted (a's or ab's, interfaces, volumes, container intents, networks);
// ab's containers cannot be read; host-side statuses cannot be written or
// read; its own container statuses can be read (ARCHITECTURE.md's one
// widening in ARCHITECTURE.md's Security section: an agent reloads them at start, and a guarded
// write needs read).
func TestContainerCredentials(t *testing.T) {
	t.Parallel()
	sc := newSecretScan(t)
	e := startSecureEtcd(t, sc)
	e.enableAuth()
	ctr := e.addIdentity(rbac.ContainersRole(hostA))
	e.addIdentity(rbac.ContainersRole(hostB))
	ctx := context.Background()

	intents := []string{
		schema.AgentKey(hostA),
		schema.InterfaceKey(hostA, "c1", "eth0"),
		schema.VolumeKey(hostA, "vol1"),
		schema.ContainerMetaKey(hostA, "c1"),
		schema.ContainerInterfaceKey(hostA, "c1", "eth0"),
		schema.NetworkKey("net1"),
		schema.ContainerMetaKey(hostB, "c2"),
		schema.ContainerInterfaceKey(hostB, "c2", "eth0"),
		schema.MemberKey(hostA, "net1"),
	}
	hostStatus := schema.StatusKey(schema.Key{Kind: schema.KindInterfaceKey, Host: hostA, Container: "c1", Interface: "eth0"})
	bStatus := schema.StatusKey(schema.Key{Kind: schema.KindContainerInterfaceKey, Host: hostB, Container: "c2", Interface: "eth0"})
	seeded := seed(t, e, append(intents, hostStatus, bStatus)...)
	ownStatus := schema.StatusKey(schema.Key{Kind: schema.KindContainerInterfaceKey, Host: hostA, Container: "c1", Interface: "eth0"})

	for _, login := range logins {
		t.Run(login.name, func(t *testing.T) {
			c := e.login(ctr, login.byCert)

			kvs, _, err := c.List(ctx, schema.ContainerPrefix(hostA, "c1"))
			allowed(t, sc, "list own container", err)
			if len(kvs) != 2 {
				t.Errorf("own container's intents: %d keys, want meta and interface", len(kvs))
			}
			_, _, err = c.List(ctx, schema.ContainersPrefix(hostA))
			allowed(t, sc, "list host a's containers (identity discovery)", err)
			allowed(t, sc, "watch own container", watchErr(c, schema.ContainerPrefix(hostA, "c1")))
			_, err = c.Apply(ctx, store.Op{Key: ownStatus, Value: []byte(`{}`)})
			allowed(t, sc, "write own container status", err)
			_, err = c.Apply(ctx, store.Op{Key: ownStatus, Delete: true})
			allowed(t, sc, "delete own container status", err)

			tryWrites(t, sc, c, intents...)
			tryWrites(t, sc, c, hostStatus, bStatus, schema.HostPrefix(hostA), schema.ContainersPrefix(hostA))
			tryReads(t, sc, c,
				schema.ContainersPrefix(hostB), schema.ContainerMetaKey(hostB, "c2"),
				schema.InterfacesPrefix(hostA), schema.VolumesPrefix(hostA), schema.AgentKey(hostA),
				schema.NetworksPrefix(), hostStatus, schema.StatusContainersPrefix(hostB), schema.MembersPrefix())
			_, _, err = c.List(ctx, schema.StatusContainerPrefix(hostA, "c1"))
			allowed(t, sc, "read own container statuses", err)
			_, err = c.Apply(ctx, store.Op{Key: ownStatus, Value: []byte(`{}`), Guard: store.CreateOnly()})
			allowed(t, sc, "guarded status write", err)
			_, err = c.Apply(ctx, store.Op{Key: ownStatus, Delete: true})
			allowed(t, sc, "delete own container status", err)

			untouched(t, e, seeded, ownStatus)
		})
	}
}

// Logins that must fail, each with an error that says why, and with
// nothing written: no client certificate, a wrong password, a certificate
// from another CA, an expired certificate; and, refused by uspace before
// dialing, a password file others can read. A certificate of no known user
// gets through TLS but may do nothing.
func TestRefusedLogins(t *testing.T) {
	t.Parallel()
	sc := newSecretScan(t)
	e := startSecureEtcd(t, sc)
	e.enableAuth()
	a := e.addIdentity(rbac.HostRole(hostA))
	ctx := context.Background()

	other := newPKI(t, e.Dir, "other")
	otherCert, otherKey := other.issue("other-a", a.Name, certOpts{})
	expiredCert, expiredKey := e.PKI.issue("expired-a", a.Name, certOpts{notAfter: time.Now().Add(-time.Hour)})
	otherServerTrust := other.CA
	wrong, _ := rbac.GeneratePassword()
	sc.secret(wrong)
	wrongFile := filepath.Join(e.Dir, "wrong.password")
	loose := filepath.Join(e.Dir, "loose.password")
	pw, _ := os.ReadFile(a.PasswordFile)
	for f, content := range map[string][]byte{wrongFile: []byte(wrong), loose: pw} {
		if err := os.WriteFile(f, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{otherKey, expiredKey} {
		sc.secretFile(k)
	}

	noCert := store.Config{Endpoints: e.Endpoints, CACert: e.PKI.CA}
	noCertPW := noCert
	noCertPW.Username, noCertPW.PasswordFile = a.Name, a.PasswordFile
	badServer := e.certConfig(a.Cert, a.Key)
	badServer.CACert = otherServerTrust

	target := schema.InterfaceKey(hostA, "c1", "eth0")
	// A group, so that its parallel subtests end before the checks below.
	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cfg  store.Config
			want string
		}{
			{"no credentials (no client certificate)", noCert, "tls: certificate required"},
			{"password but no client certificate", noCertPW, "tls: certificate required"},
			{"wrong password", e.passwordConfig(a.Name, wrongFile), `as "uspace-host-a": etcdserver: authentication failed, invalid user ID or password`},
			{"certificate from another CA", e.certConfig(otherCert, otherKey), "tls: unknown certificate authority"},
			{"expired certificate", e.certConfig(expiredCert, expiredKey), "tls: expired certificate"},
			{"password file readable by others", e.passwordConfig(a.Name, loose), "has mode 0644: it must not be accessible by group or others"},
			{"server certificate not from the trusted CA", badServer, "x509: certificate signed by unknown authority"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel() // each waits out its dial timeout
				tc.cfg.DialTimeout = time.Second
				start := time.Now()
				c, err := connect(tc.cfg)
				sc.addErr(err)
				if err == nil {
					_, werr := c.Apply(ctx, store.Op{Key: target, Value: []byte(`{}`)})
					c.Close()
					t.Fatalf("logged in; a write then gave %v", werr)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %q\ndoes not say %q", err, tc.want)
				}
				t.Logf("refused in %v: %v", time.Since(start).Round(time.Millisecond), err)
			})
		}
	})

	// Past TLS, but no user logged in: a valid certificate whose CN is no
	// etcd user (and no password), and the same after the user is gone.
	strangerCert, strangerKey := e.PKI.issue("stranger", "uspace-host-zz", certOpts{})
	sc.secretFile(strangerKey)
	for name, cfg := range map[string]store.Config{
		"certificate of no user":               e.certConfig(strangerCert, strangerKey),
		"certificate of no user, no user name": e.certConfig(e.AnonCert, e.AnonKey),
	} {
		c, err := connect(cfg)
		if err != nil {
			sc.addErr(err)
			t.Errorf("%s: TLS should pass: %v", name, err)
			continue
		}
		_, err = c.Apply(ctx, store.Op{Key: target, Value: []byte(`{}`)})
		refused(t, sc, name+": write", err)
		_, err = c.Get(ctx, target)
		refused(t, sc, name+": read", err)
		c.Close()
	}

	if kvs, _, err := e.Root.List(ctx, "/"); err != nil || len(kvs) != 0 {
		t.Errorf("etcd holds %d keys after refused logins (%v)", len(kvs), err)
	}
}
