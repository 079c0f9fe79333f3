package security_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/store"
)

// secureEtcd is a real etcd serving TLS only, requiring a client
// certificate signed by its CA on every connection.
type secureEtcd struct {
	t         *testing.T
	Dir       string
	Endpoints []string
	// CA signed the server's and every client's certificate.
	CA string
	// PKI is the test's CA when the test made the certificates.
	PKI  *pki
	Proc *harness.Proc
	// RootCert/RootKey log in as etcd's root user (CN=root).
	RootCert, RootKey string
	// AnonCert/AnonKey are a valid certificate of no user: what a client
	// that logs in with a password presents to pass --client-cert-auth.
	AnonCert, AnonKey string
	// Root is the test's own client, logged in as root by certificate.
	Root *store.Client
	scan *secretScan
}

// startSecureEtcd runs etcd with TLS and --client-cert-auth, certificates
// made by a CA of the test; auth itself is still off (enableAuth or
// `uspacectl auth init --enable` turns it on).
func startSecureEtcd(t *testing.T, scan *secretScan, extraFlags ...string) *secureEtcd {
	t.Helper()
	dir := harness.ShortTempDir(t)
	p := newPKI(t, dir, "uspace-test")
	serverCert, serverKey := p.issue("server", "etcd server", certOpts{server: true})
	rootCert, rootKey := p.issue("root", "root", certOpts{})
	e := runEtcd(t, scan, dir, tlsFiles{CA: p.CA, ServerCert: serverCert, ServerKey: serverKey, RootCert: rootCert, RootKey: rootKey}, extraFlags...)
	e.PKI = p
	e.AnonCert, e.AnonKey = p.issue("anonymous", "uspace-test-anonymous", certOpts{})
	scan.secretFile(e.AnonKey)
	return e
}

// tlsFiles are the PEM files etcd and the test's root client use.
type tlsFiles struct{ CA, ServerCert, ServerKey, RootCert, RootKey string }

// runEtcd starts the etcd binary serving TLS on a free port, requiring
// client certificates signed by files.CA, and connects to it as root by
// certificate.
func runEtcd(t *testing.T, scan *secretScan, dir string, files tlsFiles, extraFlags ...string) *secureEtcd {
	t.Helper()
	e := &secureEtcd{t: t, Dir: dir, CA: files.CA, RootCert: files.RootCert, RootKey: files.RootKey, scan: scan}
	for _, k := range []string{files.ServerKey, files.RootKey} {
		scan.secretFile(k)
	}
	client := "https://" + harness.FreeAddr(t)
	peer := "http://" + harness.FreeAddr(t)
	args := append([]string{
		"--name", "sec",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "sec=" + peer,
		"--client-cert-auth",
		"--trusted-ca-file", files.CA,
		"--cert-file", files.ServerCert,
		"--key-file", files.ServerKey,
		// Tests only: no fsync per write (a crash loses the test anyway).
		"--unsafe-no-fsync",
	}, extraFlags...)
	e.Proc = harness.StartProc(t, "etcd", binaries.Path(t, "etcd"), args)
	scan.source("etcd log", e.Proc.Output)
	e.Endpoints = []string{client}

	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := connect(e.certConfig(e.RootCert, e.RootKey))
		if err == nil {
			e.Root = c
			t.Cleanup(func() { c.Close() })
			return e
		}
		select {
		case <-e.Proc.Exited():
			t.Fatalf("etcd exited:\n%s", e.Proc.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd with TLS not serving: %v\n%s", err, e.Proc.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func connect(cfg store.Config) (*store.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DialTimeout+5*time.Second)
	defer cancel()
	c, err := store.Connect(ctx, cfg)
	if err != nil {
		// What store.Connect should add itself (reported to the lead):
		// gRPC may report a refused client certificate as "broken pipe".
		if d := store.DiagnoseTLS(ctx, cfg); d != nil {
			err = fmt.Errorf("%w (%v)", err, d)
		}
	}
	return c, err
}

// certConfig logs in with a client certificate only.
func (e *secureEtcd) certConfig(cert, key string) store.Config {
	return store.Config{Endpoints: e.Endpoints, DialTimeout: 2 * time.Second, CACert: e.CA, Cert: cert, Key: key}
}

// passwordConfig logs in as user with the password in file, presenting the
// anonymous certificate that --client-cert-auth asks for.
func (e *secureEtcd) passwordConfig(user, file string) store.Config {
	c := e.certConfig(e.AnonCert, e.AnonKey)
	c.Username, c.PasswordFile = user, file
	return c
}

// enableAuth creates root (client-certificate login only) and enables auth,
// as `uspacectl auth init --enable --root-cert-only` does.
func (e *secureEtcd) enableAuth() {
	e.t.Helper()
	ctx := context.Background()
	if _, err := rbac.EnsureRoot(ctx, e.Root, ""); err != nil {
		e.t.Fatal(err)
	}
	if err := rbac.EnableAuth(ctx, e.Root); err != nil {
		e.t.Fatal(err)
	}
}

// identity is an etcd user of the test with both ways to log in.
type identity struct {
	Name         string
	PasswordFile string
	Cert, Key    string
}

// addIdentity creates r's role and user with a fresh password (in a 0600
// file) and issues it a client certificate with CN = its name.
func (e *secureEtcd) addIdentity(r rbac.Role) identity {
	e.t.Helper()
	pw, err := rbac.GeneratePassword()
	if err != nil {
		e.t.Fatal(err)
	}
	e.scan.secret(pw)
	id := identity{Name: r.Name, PasswordFile: filepath.Join(e.Dir, r.Name+".password")}
	if err := os.WriteFile(id.PasswordFile, []byte(pw+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	done, err := rbac.EnsureIdentity(context.Background(), e.Root, r, rbac.UserSpec{Password: pw})
	e.scan.add("EnsureIdentity "+r.Name, strings.Join(done, "\n"))
	if err != nil {
		e.t.Fatal(err)
	}
	id.Cert, id.Key = e.PKI.issue(r.Name, r.Name, certOpts{})
	e.scan.secretFile(id.Key)
	return id
}

// login connects as id by password or by certificate.
func (e *secureEtcd) login(id identity, byCert bool) *store.Client {
	e.t.Helper()
	cfg := e.passwordConfig(id.Name, id.PasswordFile)
	if byCert {
		cfg = e.certConfig(id.Cert, id.Key)
	}
	c, err := connect(cfg)
	if err != nil {
		e.scan.addErr(err)
		e.t.Fatalf("log in as %s: %v", id.Name, err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// secretScan collects every log line, output and error a test produces
// and, when the test ends, fails it if any holds a password or private-key
// material. Findings name where, never the secret.
type secretScan struct {
	t       *testing.T
	mu      sync.Mutex
	secrets []string
	texts   map[string]string
	sources map[string]func() string
}

// newSecretScan must be called before anything whose output it collects is
// started, so that its check runs after their cleanups.
func newSecretScan(t *testing.T) *secretScan {
	s := &secretScan{t: t, texts: map[string]string{}, sources: map[string]func() string{}}
	t.Cleanup(s.check)
	return s
}

func (s *secretScan) secret(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v = strings.TrimSpace(v); len(v) >= 8 {
		s.secrets = append(s.secrets, v)
	}
}

// secretFile adds a password file's content, or each line of a PEM
// private key's body.
func (s *secretScan) secretFile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		s.secret(string(b))
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "-----") && len(l) >= 16 {
			s.secret(l)
		}
	}
}

func (s *secretScan) add(label, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.texts[fmt.Sprintf("%03d %s", len(s.texts), label)] = text
}

func (s *secretScan) addErr(err error) {
	if err != nil {
		s.add("error", err.Error())
	}
}

func (s *secretScan) source(label string, f func() string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources[label] = f
}

func (s *secretScan) check() {
	s.mu.Lock()
	defer s.mu.Unlock()
	texts := map[string]string{}
	for k, v := range s.texts {
		texts[k] = v
	}
	for k, f := range s.sources {
		texts[k] = f()
	}
	if len(s.secrets) == 0 {
		s.t.Errorf("secrets scan: no secrets registered")
	}
	var lines int
	for label, text := range texts {
		lines += strings.Count(text, "\n") + 1
		if strings.Contains(text, "PRIVATE KEY") {
			s.t.Errorf("secrets scan: %s holds a PEM private key", label)
		}
		for i, secret := range s.secrets {
			if strings.Contains(text, secret) {
				s.t.Errorf("secrets scan: %s holds secret #%d (%d characters)", label, i, len(secret))
			}
		}
	}
	s.t.Logf("secrets scan: %d texts, %d lines, %d secrets: clean unless reported above", len(texts), lines, len(s.secrets))
}
