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
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/schema"
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
		Long: `Set up etcd's role-based access for uspace, as DESIGN.md's Security table says:

  uspace-host-<host>        read/write hosts/<host>/ and status/hosts/<host>/, read networks/
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

func authInitCmd(connect connectFunc, shared *store.Config) *cobra.Command {
	var out, rootPasswordFile string
	var enable, rootCertOnly bool
	cmd := &cobra.Command{
		Use:   "init --out DIR [--enable] [--root-password-file FILE | --root-cert-only]",
		Short: "Create the uspace-admin role and user (credentials into DIR), etcd's root user if missing, and optionally enable auth",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rootPasswordFile != "" && rootCertOnly {
				return errors.New("--root-password-file and --root-cert-only exclude each other")
			}
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			st, err := connect(ctx)
			if err != nil {
				return err
			}
			defer st.Close()

			enabled, err := rbac.AuthEnabled(ctx, st)
			if err != nil {
				return err
			}
			hasRoot, err := rbac.UserExists(ctx, st, rbac.RootUser)
			if err != nil {
				return err
			}
			switch {
			case hasRoot || rootPasswordFile != "" || rootCertOnly:
				var password string
				if rootPasswordFile != "" {
					if password, err = readSecretFile(rootPasswordFile); err != nil {
						return err
					}
				}
				done, err := rbac.EnsureRoot(ctx, st, password)
				report(w, done)
				if err != nil {
					return err
				}
			case enable:
				return errors.New("etcd has no root user, which it needs before auth can be enabled: " +
					"give --root-password-file FILE (mode 0600) to create it with that password, " +
					"or --root-cert-only to create it for client-certificate login (CN=root) only")
			default:
				fmt.Fprintln(w, "etcd has no root user yet: create it (--root-password-file or --root-cert-only) before enabling auth")
			}

			if err := ensureWithCredentials(ctx, st, w, rbac.AdminRole(), out, *shared); err != nil {
				return err
			}
			switch {
			case enabled:
				fmt.Fprintln(w, "etcd auth is enabled")
			case enable:
				if err := rbac.EnableAuth(ctx, st); err != nil {
					return err
				}
				fmt.Fprintln(w, "enabled etcd auth")
			default:
				fmt.Fprintln(w, "etcd auth is NOT enabled: anyone reaching etcd can do anything (run again with --enable)")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory for uspace-admin's credential files (created 0700; required)")
	cmd.Flags().BoolVar(&enable, "enable", false, "enable etcd auth once the root and uspace-admin users exist")
	cmd.Flags().StringVar(&rootPasswordFile, "root-password-file", "", "create etcd's root user, if missing, with the password in this file (mode 0600)")
	cmd.Flags().BoolVar(&rootCertOnly, "root-cert-only", false, "create etcd's root user, if missing, without a password: it then logs in only with a client certificate with CN=root")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func authAddHostCmd(connect connectFunc, shared *store.Config) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "add-host HOST --out DIR",
		Short: "Create uspace-host-HOST and uspace-containers-HOST (roles and users) and write their credential files into DIR",
		Long: `Create the roles uspace-host-HOST and uspace-containers-HOST with exactly the
permissions of DESIGN.md's Security table (extra ones are revoked), users of the
same names holding only them, and write into DIR, for each identity:

  <identity>.password  the password, mode 0600
  <identity>.env       USPACE_ETCD_USER, USPACE_ETCD_PASSWORD_FILE (and the
                       endpoints and CA this command used), for EnvironmentFile=

A password file already in DIR is kept and the user's password set to it, so
running the command again changes nothing. Without one, a new random password
is generated (and an existing user's password replaced).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := args[0]
			if err := schema.ValidateHost("host", host); err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := connect(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			for _, r := range []rbac.Role{rbac.HostRole(host), rbac.ContainersRole(host)} {
				if err := ensureWithCredentials(ctx, st, cmd.OutOrStdout(), r, out, *shared); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory for the credential files (created 0700; required)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func authRemoveHostCmd(connect connectFunc) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "remove-host HOST [--out DIR]",
		Short: "Delete the users and roles uspace-host-HOST and uspace-containers-HOST (and their credential files in DIR)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := args[0]
			if err := schema.ValidateHost("host", host); err != nil {
				return err
			}
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			st, err := connect(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			for _, name := range []string{rbac.HostIdentity(host), rbac.ContainersIdentity(host)} {
				done, err := rbac.RemoveIdentity(ctx, st, name)
				report(w, done)
				if err != nil {
					return err
				}
				if len(done) == 0 {
					fmt.Fprintf(w, "%s: no such user or role\n", name)
				}
				if out == "" {
					continue
				}
				for _, f := range credentialFiles(out, name) {
					switch err := os.Remove(f); {
					case err == nil:
						fmt.Fprintf(w, "removed %s\n", f)
					case !errors.Is(err, os.ErrNotExist):
						return err
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "also remove the host's credential files from this directory")
	return cmd
}

func authCheckCmd(connect connectFunc, shared *store.Config) *cobra.Command {
	var withPassword, withCert []string
	cmd := &cobra.Command{
		Use:   "check [--identity NAME=PASSWORD_FILE]... [--identity-cert NAME=CERT,KEY]...",
		Short: "Prove what each identity can and cannot do, by trying reads and writes of a scratch key in each scope",
		Long: `For each identity, try a prefix read and a write and delete of the scratch key
<prefix>` + rbac.ProbeSuffix + ` in its own scopes, their neighbours, another host's and
the uspace root, and compare with DESIGN.md's Security table. Scratch keys are
deleted again. Exits non-zero when an identity can do more or less than it
should, or cannot log in.

Identities log in with the endpoints and CA of the --etcd-* flags (and their
client certificate, which etcd ignores once a user logs in with a password).
With no --identity, the --etcd-* identity itself is checked: --etcd-user, or
the Common Name of --etcd-cert. Give etcd root credentials through --etcd-*
when checking other identities, so that a scratch key an identity could write
but not delete is still removed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			type identity struct {
				name, how string
				cfg       store.Config
			}
			var ids []identity
			for _, spec := range withPassword {
				name, file, ok := strings.Cut(spec, "=")
				if !ok || name == "" || file == "" {
					return fmt.Errorf("--identity %q: want NAME=PASSWORD_FILE", spec)
				}
				cfg := *shared
				cfg.Username, cfg.PasswordFile, cfg.Password = name, file, ""
				ids = append(ids, identity{name, "password file " + file, cfg})
			}
			for _, spec := range withCert {
				name, files, ok := strings.Cut(spec, "=")
				cert, key, ok2 := strings.Cut(files, ",")
				if !ok || !ok2 || name == "" || cert == "" || key == "" {
					return fmt.Errorf("--identity-cert %q: want NAME=CERT,KEY", spec)
				}
				if cn, err := certCN(cert); err != nil {
					return err
				} else if cn != name {
					return fmt.Errorf("--identity-cert %s: certificate %s is for CN %q: etcd would log it in as %q", name, cert, cn, cn)
				}
				cfg := *shared
				cfg.Cert, cfg.Key, cfg.Username, cfg.PasswordFile, cfg.Password = cert, key, "", "", ""
				ids = append(ids, identity{name, "client certificate " + cert, cfg})
			}
			self := len(ids) == 0
			if self {
				cfg := *shared
				switch {
				case cfg.Username != "":
					ids = append(ids, identity{cfg.Username, "--etcd-user", cfg})
				case cfg.Cert != "":
					cn, err := certCN(cfg.Cert)
					if err != nil {
						return err
					}
					ids = append(ids, identity{cn, "client certificate " + cfg.Cert, cfg})
				default:
					return errors.New("no identity to check: give --identity NAME=PASSWORD_FILE, --identity-cert NAME=CERT,KEY, or log in with --etcd-user or --etcd-cert")
				}
			}

			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			// With root's credentials in --etcd-*, also compare each role
			// and user with what it must be, and probe the scopes of the
			// hosts etcd has roles for.
			var root *store.Client
			var hosts []string
			if !self {
				st, err := connect(ctx)
				if err == nil {
					hosts, err = rbac.Hosts(ctx, st)
				}
				if err != nil {
					fmt.Fprintf(w, "not auditing roles and users (needs etcd root in --etcd-*): %v\n", err)
					if st != nil {
						st.Close()
					}
				} else {
					root = st
					defer root.Close()
				}
			}
			var failed, leftovers []string
			for _, id := range ids {
				scopes, err := rbac.Scopes(id.name, probeHosts(hosts, id.name)...)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "identity %s (%s):\n", id.name, id.how)
				failedBefore := len(failed)
				if root != nil && id.name != rbac.RootUser {
					problems, err := rbac.Audit(ctx, root, id.name)
					if err != nil {
						return fmt.Errorf("auditing %s: %w", id.name, err)
					}
					for _, p := range problems {
						fmt.Fprintf(w, "  FAIL: %s\n", p)
					}
					if len(problems) > 0 {
						failed = append(failed, fmt.Sprintf("%s (%d problems with its role or user)", id.name, len(problems)))
					}
				}
				st, err := dial(ctx, id.cfg)
				if err != nil {
					fmt.Fprintf(w, "  FAIL: cannot log in: %v\n", err)
					failed = append(failed, id.name+" (cannot log in)")
					continue
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  scope\tshould\tcan\tverdict")
				bad := 0
				for _, s := range scopes {
					res, err := rbac.Probe(ctx, st, s)
					if err != nil {
						tw.Flush()
						st.Close()
						return fmt.Errorf("checking %s: %w", id.name, err)
					}
					verdict := "ok"
					if !res.OK() {
						bad++
						verdict = "FAIL: " + mismatch(res)
					}
					if res.Leftover {
						leftovers = append(leftovers, res.ProbeKey())
					}
					fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", s.Prefix, s.Want, res.Got, verdict)
				}
				tw.Flush()
				st.Close()
				if bad > 0 {
					failed = append(failed, fmt.Sprintf("%s (%d of %d scopes)", id.name, bad, len(scopes)))
				}
				if len(failed) > failedBefore {
					fmt.Fprintf(w, "identity %s: FAIL\n", id.name)
				} else {
					fmt.Fprintf(w, "identity %s: ok, exactly as DESIGN.md's Security table says (%d scopes)\n", id.name, len(scopes))
				}
			}
			if len(leftovers) > 0 {
				if self {
					fmt.Fprintf(w, "scratch keys left behind (written but not deletable by the identity): %s\n", strings.Join(leftovers, " "))
				} else if root == nil {
					fmt.Fprintf(w, "scratch keys left behind (no root connection to remove them): %s\n", strings.Join(leftovers, " "))
				} else if err := removeLeftovers(ctx, root, leftovers); err != nil {
					fmt.Fprintf(w, "could not remove scratch keys %s: %v\n", strings.Join(leftovers, " "), err)
				} else {
					fmt.Fprintf(w, "removed scratch keys the identities could write but not delete: %s\n", strings.Join(leftovers, " "))
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("identities that can do more or less than DESIGN.md's Security table says: %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&withPassword, "identity", nil, "an identity to check, NAME=PASSWORD_FILE (repeatable)")
	cmd.Flags().StringArrayVar(&withCert, "identity-cert", nil, "an identity to check with its client certificate, NAME=CERT,KEY (repeatable; the certificate's CN must be NAME)")
	return cmd
}

func mismatch(r rbac.ProbeResult) string {
	var s []string
	for _, a := range []rbac.Access{rbac.Read, rbac.Write} {
		switch {
		case r.Got&a != 0 && r.Want&a == 0:
			s = append(s, "can "+a.String()+" but must not")
		case r.Got&a == 0 && r.Want&a != 0:
			var why error
			if a == rbac.Read {
				why = r.ReadErr
			} else {
				why = errors.Join(r.WriteErr, r.DeleteErr)
			}
			s = append(s, fmt.Sprintf("cannot %s but should (%v)", a, why))
		}
	}
	return strings.Join(s, "; ")
}

// maxProbeHosts bounds how many other hosts' scopes check probes per
// identity; the audit of the role covers every host anyway.
const maxProbeHosts = 8

// probeHosts picks the other hosts to probe for identity: those whose
// names start with its host's first (where a missing "/" would leak).
func probeHosts(hosts []string, identity string) []string {
	own := strings.TrimPrefix(strings.TrimPrefix(identity, "uspace-host-"), "uspace-containers-")
	var near, far []string
	for _, h := range hosts {
		switch {
		case h == own:
		case strings.HasPrefix(h, own):
			near = append(near, h)
		default:
			far = append(far, h)
		}
	}
	out := append(near, far...)
	return out[:min(len(out), maxProbeHosts)]
}

func removeLeftovers(ctx context.Context, st *store.Client, keys []string) error {
	var ops []store.Op
	for _, k := range keys {
		ops = append(ops, store.Op{Key: k, Delete: true})
	}
	_, err := st.Apply(ctx, ops...)
	return err
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
