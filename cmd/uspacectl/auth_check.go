package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/store"
)

func authCheckCmd(connect connectFunc, shared *store.Config) *cobra.Command {
	var withPassword, withCert []string
	cmd := &cobra.Command{
		Use:   "check [--identity NAME=PASSWORD_FILE]... [--identity-cert NAME=CERT,KEY]...",
		Short: "Prove what each identity can and cannot do, by trying reads and writes of a scratch key in each scope",
		Long: `For each identity, try a prefix read and a write and delete of the scratch key
<prefix>` + rbac.ProbeSuffix + ` in its own scopes, their neighbours, another host's and
the uspace root, and compare with ARCHITECTURE.md's Security table. Scratch keys are
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
			ids, err := checkIdentities(withPassword, withCert, *shared)
			if err != nil {
				return err
			}
			self := len(withPassword)+len(withCert) == 0
			return runCheck(cmd.Context(), cmd.OutOrStdout(), connect, ids, self)
		},
	}
	cmd.Flags().StringArrayVar(&withPassword, "identity", nil, "an identity to check, NAME=PASSWORD_FILE (repeatable)")
	cmd.Flags().StringArrayVar(&withCert, "identity-cert", nil, "an identity to check with its client certificate, NAME=CERT,KEY (repeatable; the certificate's CN must be NAME)")
	return cmd
}

// checkIdentity is an identity auth check logs in as, and how.
type checkIdentity struct {
	name, how string
	cfg       store.Config
}

// checkIdentities are the identities of --identity and --identity-cert,
// or, with neither, the --etcd-* identity itself.
func checkIdentities(withPassword, withCert []string, shared store.Config) ([]checkIdentity, error) {
	var ids []checkIdentity
	for _, spec := range withPassword {
		name, file, ok := strings.Cut(spec, "=")
		if !ok || name == "" || file == "" {
			return nil, fmt.Errorf("--identity %q: want NAME=PASSWORD_FILE", spec)
		}
		cfg := shared
		cfg.Username, cfg.PasswordFile, cfg.Password = name, file, ""
		ids = append(ids, checkIdentity{name, "password file " + file, cfg})
	}
	for _, spec := range withCert {
		name, files, ok := strings.Cut(spec, "=")
		cert, key, ok2 := strings.Cut(files, ",")
		if !ok || !ok2 || name == "" || cert == "" || key == "" {
			return nil, fmt.Errorf("--identity-cert %q: want NAME=CERT,KEY", spec)
		}
		if cn, err := certCN(cert); err != nil {
			return nil, err
		} else if cn != name {
			return nil, fmt.Errorf("--identity-cert %s: certificate %s is for CN %q: etcd would log it in as %q", name, cert, cn, cn)
		}
		cfg := shared
		cfg.Cert, cfg.Key, cfg.Username, cfg.PasswordFile, cfg.Password = cert, key, "", "", ""
		ids = append(ids, checkIdentity{name, "client certificate " + cert, cfg})
	}
	if len(ids) > 0 {
		return ids, nil
	}
	switch {
	case shared.Username != "":
		return []checkIdentity{{shared.Username, "--etcd-user", shared}}, nil
	case shared.Cert != "":
		cn, err := certCN(shared.Cert)
		if err != nil {
			return nil, err
		}
		return []checkIdentity{{cn, "client certificate " + shared.Cert, shared}}, nil
	}
	return nil, errors.New("no identity to check: give --identity NAME=PASSWORD_FILE, --identity-cert NAME=CERT,KEY, or log in with --etcd-user or --etcd-cert")
}

// runCheck checks every identity and fails naming those that can do more
// or less than they should. self says the --etcd-* identity is the one
// checked; otherwise the --etcd-* one is taken for root.
func runCheck(ctx context.Context, w io.Writer, connect connectFunc, ids []checkIdentity, self bool) error {
	// With root's credentials in --etcd-*, also compare each role
	// and user with what it must be, and probe the scopes of the
	// hosts etcd has roles for.
	var root *store.Client
	var hosts []string
	if !self {
		root, hosts = connectRoot(ctx, w, connect)
		if root != nil {
			defer root.Close()
		}
	}
	var failed, leftovers []string
	for _, id := range ids {
		f, l, err := checkOne(ctx, w, root, id, hosts)
		if err != nil {
			return err
		}
		failed, leftovers = append(failed, f...), append(leftovers, l...)
	}
	if len(leftovers) > 0 {
		reportLeftovers(ctx, w, root, self, leftovers)
	}
	if len(failed) > 0 {
		return fmt.Errorf("identities that can do more or less than ARCHITECTURE.md's Security table says: %s", strings.Join(failed, ", "))
	}
	return nil
}

// connectRoot connects with the --etcd-* identity and lists the hosts with
// uspace roles; it returns nil, saying so, when that identity cannot.
func connectRoot(ctx context.Context, w io.Writer, connect connectFunc) (*store.Client, []string) {
	st, err := connect(ctx)
	var hosts []string
	if err == nil {
		hosts, err = rbac.Hosts(ctx, st)
	}
	if err != nil {
		fmt.Fprintf(w, "not auditing roles and users (needs etcd root in --etcd-*): %v\n", err)
		if st != nil {
			st.Close()
		}
		return nil, nil
	}
	return st, hosts
}

// checkOne audits (with root) and probes one identity; it returns what
// failed and the scratch keys it could not delete.
func checkOne(ctx context.Context, w io.Writer, root *store.Client, id checkIdentity, hosts []string) (failed, leftovers []string, err error) {
	scopes, err := rbac.Scopes(id.name, probeHosts(hosts, id.name)...)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(w, "identity %s (%s):\n", id.name, id.how)
	if root != nil && id.name != rbac.RootUser {
		problems, err := rbac.Audit(ctx, root, id.name)
		if err != nil {
			return nil, nil, fmt.Errorf("auditing %s: %w", id.name, err)
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
		return append(failed, id.name+" (cannot log in)"), nil, nil
	}
	defer st.Close()
	bad, leftovers, err := probeScopes(ctx, w, st, scopes)
	if err != nil {
		return nil, nil, fmt.Errorf("checking %s: %w", id.name, err)
	}
	if bad > 0 {
		failed = append(failed, fmt.Sprintf("%s (%d of %d scopes)", id.name, bad, len(scopes)))
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "identity %s: FAIL\n", id.name)
	} else {
		fmt.Fprintf(w, "identity %s: ok, exactly as ARCHITECTURE.md's Security table says (%d scopes)\n", id.name, len(scopes))
	}
	return failed, leftovers, nil
}

// probeScopes probes each scope with st, printing a table; it returns how
// many scopes did not match and the scratch keys left behind.
func probeScopes(ctx context.Context, w io.Writer, st *store.Client, scopes []rbac.Scope) (int, []string, error) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "  scope\tshould\tcan\tverdict")
	bad := 0
	var leftovers []string
	for _, s := range scopes {
		res, err := rbac.Probe(ctx, st, s)
		if err != nil {
			return bad, leftovers, err
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
	return bad, leftovers, nil
}

// reportLeftovers removes, with root, the scratch keys identities could
// write but not delete, or names them.
func reportLeftovers(ctx context.Context, w io.Writer, root *store.Client, self bool, leftovers []string) {
	keys := strings.Join(leftovers, " ")
	switch {
	case self:
		fmt.Fprintf(w, "scratch keys left behind (written but not deletable by the identity): %s\n", keys)
	case root == nil:
		fmt.Fprintf(w, "scratch keys left behind (no root connection to remove them): %s\n", keys)
	default:
		if err := removeLeftovers(ctx, root, leftovers); err != nil {
			fmt.Fprintf(w, "could not remove scratch keys %s: %v\n", keys, err)
		} else {
			fmt.Fprintf(w, "removed scratch keys the identities could write but not delete: %s\n", keys)
		}
	}
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
