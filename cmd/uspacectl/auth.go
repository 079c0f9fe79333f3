package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/store"
)

// authCmd administers etcd's users and roles for uspace. Every subcommand
// but check runs with etcd root credentials given through the shared
// --etcd-* flags; all of them are idempotent. Passwords are only ever
// written to files of mode 0600, never printed.
func authCmd(connect connectFunc, shared *store.Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Set up etcd auth for uspace: roles and users per host, credential files, checks by trying",
		Long: `Set up etcd's role-based access for uspace, as ARCHITECTURE.md's Security table says:

  uspace-host-<host>        read/write hosts/<host>/, status/hosts/<host>/ and members/<host>/,
                            read networks/ and members/
  uspace-containers-<host>  read hosts/<host>/containers/, write status/hosts/<host>/containers/
  uspace-admin              read/write /uspace/

Each identity is an etcd role and a user of the same name. A user logs in with
its password (file of mode 0600) or, with etcd --client-cert-auth, with a client
certificate whose Common Name is the user name.

Order: start etcd with TLS (deployments/etcd/), then
  uspacectl auth init --enable --out DIR      (as etcd root)
  uspacectl auth add-host H --out DIR         (as root, once per host)
  uspacectl auth check --identity NAME=FILE   (proves what each identity can do)`,
	}
	// gRPC can report a refused client certificate as a broken pipe; say
	// what etcd refused.
	rootConnect := connect
	connect = func(ctx context.Context) (*store.Client, error) {
		st, err := rootConnect(ctx)
		return st, explain(ctx, *shared, err)
	}
	cmd.AddCommand(authInitCmd(connect, shared), authAddHostCmd(connect, shared), authRemoveHostCmd(connect), authCheckCmd(connect, shared))
	return cmd
}

// connectGrace is what main adds to the dial timeout for a whole connect.
const connectGrace = 5 * time.Second

// dial connects as cfg says, bounded like the root connection.
func dial(ctx context.Context, cfg store.Config) (*store.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+connectGrace)
	defer cancel()
	st, err := store.Connect(ctx, cfg)
	return st, explain(ctx, cfg, err)
}

// explain adds to a connection error what etcd's TLS refused, if it did.
func explain(ctx context.Context, cfg store.Config, err error) error {
	if err == nil {
		return nil
	}
	if why := store.DiagnoseTLS(ctx, cfg); why != nil {
		return fmt.Errorf("%w (%v)", err, why)
	}
	return err
}

func credentialFiles(dir, identity string) []string {
	return []string{filepath.Join(dir, identity+".password"), filepath.Join(dir, identity+".env")}
}

// ensureWithCredentials ensures the role and user of r with the password
// in DIR/<identity>.password (generated and written first when missing, so
// a failure half-way leaves the file that the next run applies), and
// writes DIR/<identity>.env.
func ensureWithCredentials(ctx context.Context, st *store.Client, w io.Writer, r rbac.Role, dir string, shared store.Config) error {
	if dir == "" {
		return errors.New("--out: no directory given for the credential files")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("credential directory: %w", err)
	}
	files := credentialFiles(dir, r.Name)
	pwFile, envFile := files[0], files[1]
	password, err := readSecretFile(pwFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if password, err = rbac.GeneratePassword(); err != nil {
			return err
		}
		if err := writeFileAtomic(pwFile, []byte(password+"\n")); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %s (mode 0600, new random password)\n", pwFile)
	case err != nil:
		return err
	default:
		fmt.Fprintf(w, "using the password in %s\n", pwFile)
	}
	done, err := rbac.EnsureIdentity(ctx, st, r, rbac.UserSpec{Password: password, SetPassword: true})
	report(w, done)
	if err != nil {
		return err
	}
	if len(done) == 0 {
		fmt.Fprintf(w, "%s: role and user already as wanted\n", r.Name)
	}
	if err := writeFileAtomic(envFile, envFileContent(r.Name, pwFile, shared)); err != nil {
		return err
	}
	fmt.Fprintf(w, "wrote %s\n", envFile)
	return nil
}

func envFileContent(identity, pwFile string, shared store.Config) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# etcd credentials of uspace identity %s (written by uspacectl auth).\n", identity)
	fmt.Fprintf(&b, "# Use as a systemd EnvironmentFile= or: set -a; . FILE; set +a\n")
	fmt.Fprintf(&b, "# With etcd --client-cert-auth, also set %s and %s to a client certificate\n", store.EnvCert, store.EnvKey)
	fmt.Fprintf(&b, "# signed by the etcd CA (CN=%s lets it log in without the password).\n", identity)
	if len(shared.Endpoints) > 0 {
		fmt.Fprintf(&b, "%s=%s\n", store.EnvEndpoints, strings.Join(shared.Endpoints, ","))
	}
	if shared.CACert != "" {
		ca, err := filepath.Abs(shared.CACert)
		if err != nil {
			ca = shared.CACert
		}
		fmt.Fprintf(&b, "%s=%s\n", store.EnvCACert, ca)
	}
	fmt.Fprintf(&b, "%s=%s\n%s=%s\n", store.EnvUser, identity, store.EnvPasswordFile, pwFile)
	return []byte(b.String())
}

// readSecretFile reads a password file, refusing one that group or others
// can access, as store does for the password files every binary reads.
// Errors never carry the content.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", err
	}
	if mode := info.Mode().Perm(); mode&0o077 != 0 {
		return "", fmt.Errorf("password file %s has mode %04o: it must not be accessible by group or others (chmod 600 %s)", path, mode, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return "", fmt.Errorf("reading password file %s: %w", path, err)
	}
	if len(data) > 4096 {
		return "", fmt.Errorf("password file %s is larger than 4096 bytes: not a password file", path)
	}
	password := strings.TrimRight(string(data), "\r\n")
	if password == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return password, nil
}

// writeFileAtomic writes data with mode 0600 through a temporary file in
// the same directory, so a reader never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func certCN(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("client certificate: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", fmt.Errorf("client certificate %s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("client certificate %s: %w", path, err)
	}
	return c.Subject.CommonName, nil
}

func report(w io.Writer, done []string) {
	for _, d := range done {
		fmt.Fprintln(w, d)
	}
}
