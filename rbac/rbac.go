package rbac

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Identity names. The role and the user of an identity share its name.
const (
	// RootUser is etcd's own superuser: it must exist, holding etcd's root
	// role, before etcd lets auth be enabled.
	RootUser = "root"
	// AdminIdentity is for operators and `uspacectl gc`: everything under
	// the uspace prefix, of every schema version.
	AdminIdentity = "uspace-admin"

	hostIdentityPrefix       = "uspace-host-"
	containersIdentityPrefix = "uspace-containers-"
	etcdRootRole             = "root"
)

// HostIdentity is the identity of host's host agent, CNI plugin and volume
// driver.
func HostIdentity(host string) string { return hostIdentityPrefix + host }

// ContainersIdentity is the identity of the container agents on host.
func ContainersIdentity(host string) string { return containersIdentityPrefix + host }

// Access is what a grant allows on its prefix.
type Access uint8

const (
	Read Access = 1 << iota
	Write
	ReadWrite = Read | Write
	NoAccess  = Access(0)
)

func (a Access) String() string {
	switch a {
	case NoAccess:
		return "none"
	case Read:
		return "read"
	case Write:
		return "write"
	case ReadWrite:
		return "readwrite"
	}
	return fmt.Sprintf("Access(%d)", uint8(a))
}

func (a Access) permType() clientv3.PermissionType {
	switch a {
	case Read:
		return clientv3.PermissionType(clientv3.PermRead)
	case Write:
		return clientv3.PermissionType(clientv3.PermWrite)
	}
	return clientv3.PermissionType(clientv3.PermReadWrite)
}

func accessOf(t authpb.Permission_Type) Access {
	switch t {
	case authpb.READ:
		return Read
	case authpb.WRITE:
		return Write
	case authpb.READWRITE:
		return ReadWrite
	}
	return NoAccess
}

// Grant is access to every key starting with Prefix.
type Grant struct {
	Prefix string
	Access Access
}

func (g Grant) String() string { return fmt.Sprintf("%s %s", g.Access, g.Prefix) }

// Role is an etcd role with exactly these grants.
type Role struct {
	Name   string
	Grants []Grant
}

// AdminRole is uspace-admin: readwrite on the whole uspace prefix.
func AdminRole() Role {
	return Role{Name: AdminIdentity, Grants: []Grant{{schema.ProjectPrefix, ReadWrite}}}
}

// HostRole is uspace-host-<host>: readwrite on the host's intents and
// statuses, read on networks, read on every host's memberships of
// networks that span hosts and readwrite on its own.
func HostRole(host string) Role {
	return Role{Name: HostIdentity(host), Grants: []Grant{
		{schema.HostPrefix(host), ReadWrite},
		{schema.StatusHostPrefix(host), ReadWrite},
		{schema.NetworksPrefix(), Read},
		{schema.MembersPrefix(), Read},
		{schema.MemberHostPrefix(host), ReadWrite},
	}}
}

// ContainersRole is uspace-containers-<host>: read the host's container
// intents, read and write their statuses (an agent reads its own statuses
// at start, and a guarded write needs read); no intent write at all.
func ContainersRole(host string) Role {
	return Role{Name: ContainersIdentity(host), Grants: []Grant{
		{schema.ContainersPrefix(host), Read},
		{schema.StatusContainersPrefix(host), ReadWrite},
	}}
}

// RoleOf returns the role of a uspace identity name (uspace-admin,
// uspace-host-<host>, uspace-containers-<host>), validating the host.
func RoleOf(identity string) (Role, error) {
	if identity == AdminIdentity {
		return AdminRole(), nil
	}
	for _, p := range []struct {
		prefix string
		role   func(string) Role
	}{{hostIdentityPrefix, HostRole}, {containersIdentityPrefix, ContainersRole}} {
		if host, ok := strings.CutPrefix(identity, p.prefix); ok {
			if err := schema.ValidateHost("host of identity "+identity, host); err != nil {
				return Role{}, err
			}
			return p.role(host), nil
		}
	}
	return Role{}, fmt.Errorf("identity %q is not a uspace identity (%s, %s<host>, %s<host>)",
		identity, AdminIdentity, hostIdentityPrefix, containersIdentityPrefix)
}

// Allows says what the role's grants allow on a probe: Read when a prefix
// read of scope is covered, Write when a write of key is.
func (r Role) Allows(scope, key string) Access {
	var a Access
	for _, g := range r.Grants {
		if g.Access&Read != 0 && strings.HasPrefix(scope, g.Prefix) {
			a |= Read
		}
		if g.Access&Write != 0 && strings.HasPrefix(key, g.Prefix) {
			a |= Write
		}
	}
	return a
}

// GeneratePassword returns a random password (256 bits from crypto/rand,
// base64url: no characters that need quoting in an env file).
func GeneratePassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// EnsureRole makes role r exist with exactly r's grants: it creates the
// role, grants what is missing or of another access, and revokes every other
// permission. It returns what it changed, in words.
func EnsureRole(ctx context.Context, st *store.Client, r Role) ([]string, error) {
	var done []string
	auth := st.Etcd().Auth
	resp, err := auth.RoleGet(ctx, r.Name)
	switch {
	case errors.Is(err, rpctypes.ErrRoleNotFound):
		if _, err := auth.RoleAdd(ctx, r.Name); err != nil {
			return done, fmt.Errorf("adding role %s: %w", r.Name, err)
		}
		done = append(done, "created role "+r.Name)
		resp = &clientv3.AuthRoleGetResponse{}
	case err != nil:
		return done, fmt.Errorf("reading role %s: %w", r.Name, err)
	}
	want := map[[2]string]Access{}
	for _, g := range r.Grants {
		want[[2]string{g.Prefix, clientv3.GetPrefixRangeEnd(g.Prefix)}] = g.Access
	}
	have := map[[2]string]Access{}
	for _, p := range resp.Perm {
		rng := [2]string{string(p.Key), string(p.RangeEnd)}
		have[rng] = accessOf(p.PermType)
		if _, ok := want[rng]; !ok {
			if _, err := auth.RoleRevokePermission(ctx, r.Name, rng[0], rng[1]); err != nil {
				return done, fmt.Errorf("revoking %s from role %s: %w", describeRange(rng), r.Name, err)
			}
			done = append(done, fmt.Sprintf("role %s: revoked %s %s", r.Name, accessOf(p.PermType), describeRange(rng)))
		}
	}
	for _, g := range r.Grants {
		rng := [2]string{g.Prefix, clientv3.GetPrefixRangeEnd(g.Prefix)}
		if have[rng] == g.Access {
			continue
		}
		// A grant on the same range replaces the access it had.
		if _, err := auth.RoleGrantPermission(ctx, r.Name, rng[0], rng[1], g.Access.permType()); err != nil {
			return done, fmt.Errorf("granting %s to role %s: %w", g, r.Name, err)
		}
		done = append(done, fmt.Sprintf("role %s: granted %s", r.Name, g))
	}
	return done, nil
}

func describeRange(rng [2]string) string {
	switch {
	case rng[1] == "":
		return "key " + rng[0]
	case rng[1] == clientv3.GetPrefixRangeEnd(rng[0]):
		return "prefix " + rng[0]
	}
	return fmt.Sprintf("range [%s, %s)", rng[0], rng[1])
}

// UserSpec is a user to ensure. Password, when set, is the password the
// user must have: set on creation and, when the user exists and SetPassword
// is true, changed unless etcd (with auth on) already accepts it. It never
// appears in what EnsureUser returns.
type UserSpec struct {
	Name        string
	Password    string
	SetPassword bool
	// NoPassword creates the user for client-certificate login only.
	NoPassword bool
	Roles      []string
}

// EnsureUser makes the user exist with exactly spec.Roles. It returns what
// it changed, in words (never the password).
func EnsureUser(ctx context.Context, st *store.Client, spec UserSpec) ([]string, error) {
	var done []string
	auth := st.Etcd().Auth
	resp, err := auth.UserGet(ctx, spec.Name)
	switch {
	case errors.Is(err, rpctypes.ErrUserNotFound):
		if spec.Password == "" && !spec.NoPassword {
			return done, fmt.Errorf("adding user %s: no password given", spec.Name)
		}
		opts := &clientv3.UserAddOptions{NoPassword: spec.NoPassword}
		if _, err := auth.UserAddWithOptions(ctx, spec.Name, spec.Password, opts); err != nil {
			return done, fmt.Errorf("adding user %s: %w", spec.Name, err)
		}
		if spec.NoPassword {
			done = append(done, "created user "+spec.Name+" (client certificate login only)")
		} else {
			done = append(done, "created user "+spec.Name)
		}
		resp = &clientv3.AuthUserGetResponse{}
	case err != nil:
		return done, fmt.Errorf("reading user %s: %w", spec.Name, err)
	case spec.SetPassword && spec.Password != "":
		// A change invalidates every token of the user; skip it when the
		// password already is the wanted one (verifiable once auth is on).
		if _, err := auth.Authenticate(ctx, spec.Name, spec.Password); err == nil {
			break
		} else if !errors.Is(err, rpctypes.ErrAuthFailed) && !errors.Is(err, rpctypes.ErrAuthNotEnabled) {
			return done, fmt.Errorf("checking the password of user %s: %w", spec.Name, err)
		}
		if _, err := auth.UserChangePassword(ctx, spec.Name, spec.Password); err != nil {
			return done, fmt.Errorf("setting the password of user %s: %w", spec.Name, err)
		}
		done = append(done, "set the password of user "+spec.Name)
	}
	for _, role := range resp.Roles {
		if !slices.Contains(spec.Roles, role) {
			if _, err := auth.UserRevokeRole(ctx, spec.Name, role); err != nil {
				return done, fmt.Errorf("revoking role %s from user %s: %w", role, spec.Name, err)
			}
			done = append(done, fmt.Sprintf("user %s: revoked role %s", spec.Name, role))
		}
	}
	for _, role := range spec.Roles {
		if !slices.Contains(resp.Roles, role) {
			if _, err := auth.UserGrantRole(ctx, spec.Name, role); err != nil {
				return done, fmt.Errorf("granting role %s to user %s: %w", role, spec.Name, err)
			}
			done = append(done, fmt.Sprintf("user %s: granted role %s", spec.Name, role))
		}
	}
	return done, nil
}

// EnsureRoot makes etcd's root user exist with the root role, which etcd
// requires before it enables auth. A missing root user is created with
// password, or for client-certificate login only when password is empty.
// An existing root user's password is left alone.
func EnsureRoot(ctx context.Context, st *store.Client, password string) ([]string, error) {
	resp, err := st.Etcd().Auth.UserGet(ctx, RootUser)
	spec := UserSpec{Name: RootUser, Password: password, NoPassword: password == ""}
	if err == nil {
		// Keep whatever other roles root has; only add etcd's root role.
		spec.Roles = resp.Roles
		if !slices.Contains(spec.Roles, etcdRootRole) {
			spec.Roles = append(slices.Clone(spec.Roles), etcdRootRole)
		}
	} else {
		spec.Roles = []string{etcdRootRole}
	}
	return EnsureUser(ctx, st, spec)
}

// EnsureIdentity ensures the role of a uspace identity and its user holding
// exactly that role.
func EnsureIdentity(ctx context.Context, st *store.Client, r Role, user UserSpec) ([]string, error) {
	done, err := EnsureRole(ctx, st, r)
	if err != nil {
		return done, err
	}
	user.Name, user.Roles = r.Name, []string{r.Name}
	more, err := EnsureUser(ctx, st, user)
	return append(done, more...), err
}

// RemoveIdentity deletes the user and the role of an identity; either may
// already be gone.
func RemoveIdentity(ctx context.Context, st *store.Client, name string) ([]string, error) {
	var done []string
	switch _, err := st.Etcd().Auth.UserDelete(ctx, name); {
	case err == nil:
		done = append(done, "deleted user "+name)
	case !errors.Is(err, rpctypes.ErrUserNotFound):
		return done, fmt.Errorf("deleting user %s: %w", name, err)
	}
	// Deleting the role also revokes it from any other user holding it.
	switch _, err := st.Etcd().Auth.RoleDelete(ctx, name); {
	case err == nil:
		done = append(done, "deleted role "+name)
	case !errors.Is(err, rpctypes.ErrRoleNotFound):
		return done, fmt.Errorf("deleting role %s: %w", name, err)
	}
	return done, nil
}

// RoleGrants returns the grants a role holds in etcd, in key order; a
// permission that is not a prefix range has Prefix "key K" or
// "range [K, E)".
func RoleGrants(ctx context.Context, st *store.Client, name string) ([]Grant, error) {
	resp, err := st.Etcd().Auth.RoleGet(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("reading role %s: %w", name, err)
	}
	var out []Grant
	for _, p := range resp.Perm {
		rng := [2]string{string(p.Key), string(p.RangeEnd)}
		prefix := rng[0]
		if rng[1] != clientv3.GetPrefixRangeEnd(rng[0]) {
			prefix = describeRange(rng)
		}
		out = append(out, Grant{Prefix: prefix, Access: accessOf(p.PermType)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix < out[j].Prefix })
	return out, nil
}

// UserExists reports whether etcd has the user.
func UserExists(ctx context.Context, st *store.Client, name string) (bool, error) {
	_, err := st.Etcd().Auth.UserGet(ctx, name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, rpctypes.ErrUserNotFound):
		return false, nil
	}
	return false, fmt.Errorf("reading user %s: %w", name, err)
}

// AuthEnabled reports whether etcd enforces auth.
func AuthEnabled(ctx context.Context, st *store.Client) (bool, error) {
	resp, err := st.Etcd().Auth.AuthStatus(ctx)
	if err != nil {
		return false, fmt.Errorf("reading etcd auth status: %w", err)
	}
	return resp.Enabled, nil
}

// EnableAuth turns etcd's auth on (a no-op when it is on). The root user
// must exist with the root role (EnsureRoot).
func EnableAuth(ctx context.Context, st *store.Client) error {
	if _, err := st.Etcd().Auth.AuthEnable(ctx); err != nil {
		return fmt.Errorf("enabling etcd auth: %w", err)
	}
	return nil
}

// Hosts lists the hosts that have a uspace role in etcd.
func Hosts(ctx context.Context, st *store.Client) ([]string, error) {
	resp, err := st.Etcd().Auth.RoleList(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	var hosts []string
	for _, r := range resp.Roles {
		h, ok := strings.CutPrefix(r, hostIdentityPrefix)
		if !ok {
			h, ok = strings.CutPrefix(r, containersIdentityPrefix)
		}
		if ok && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	sort.Strings(hosts)
	return hosts, nil
}

// Audit compares an identity's role and user in etcd with what they must
// be and returns every difference, in words (nil when exact).
func Audit(ctx context.Context, st *store.Client, identity string) ([]string, error) {
	want, err := RoleOf(identity)
	if err != nil {
		return nil, err
	}
	var problems []string
	switch have, err := RoleGrants(ctx, st, identity); {
	case errors.Is(err, rpctypes.ErrRoleNotFound):
		problems = append(problems, "role "+identity+" does not exist")
	case err != nil:
		return nil, err
	default:
		for _, g := range have {
			if !slices.Contains(want.Grants, g) {
				problems = append(problems, fmt.Sprintf("role %s holds %s, which it must not", identity, g))
			}
		}
		for _, g := range want.Grants {
			if !slices.Contains(have, g) {
				problems = append(problems, fmt.Sprintf("role %s lacks %s", identity, g))
			}
		}
	}
	switch resp, err := st.Etcd().Auth.UserGet(ctx, identity); {
	case errors.Is(err, rpctypes.ErrUserNotFound):
		problems = append(problems, "user "+identity+" does not exist")
	case err != nil:
		return nil, fmt.Errorf("reading user %s: %w", identity, err)
	default:
		for _, r := range resp.Roles {
			if r != identity {
				problems = append(problems, fmt.Sprintf("user %s holds role %s too", identity, r))
			}
		}
		if !slices.Contains(resp.Roles, identity) {
			problems = append(problems, fmt.Sprintf("user %s does not hold role %s", identity, identity))
		}
	}
	return problems, nil
}

// ProbeSuffix names the scratch key a probe writes in a scope. It starts
// with a dot, which no uspace name may, so no agent mistakes it for an
// intent.
const ProbeSuffix = ".uspace-auth-check"

// Scope is a prefix to probe and what the identity should be able to do
// there.
type Scope struct {
	Prefix string
	Want   Access
}

// ProbeKey is the scratch key a write probe of the scope uses.
func (s Scope) ProbeKey() string { return s.Prefix + ProbeSuffix }

// Scopes lists the prefixes `uspacectl auth check` probes for an identity:
// its own scopes, their neighbours, those of a made-up host whose name
// starts with this host's (to catch a grant on a prefix without its "/"),
// those of otherHosts, and the uspace root. Want comes from the role, so
// the probes compare etcd's behaviour with ARCHITECTURE.md's Security table
// as encoded in HostRole, ContainersRole and AdminRole. The root user is
// expected to do everything.
func Scopes(identity string, otherHosts ...string) ([]Scope, error) {
	var r Role
	if identity == RootUser {
		r = Role{Name: RootUser, Grants: []Grant{{"", ReadWrite}}}
	} else {
		var err error
		if r, err = RoleOf(identity); err != nil {
			return nil, err
		}
	}
	host, ok := strings.CutPrefix(identity, hostIdentityPrefix)
	if !ok {
		host, ok = strings.CutPrefix(identity, containersIdentityPrefix)
	}
	prefixes := []string{schema.ProjectPrefix, schema.Root, schema.NetworksPrefix(), schema.HostsPrefix(), schema.StatusPrefix(), schema.MembersPrefix()}
	if ok {
		hosts := []string{host, host + "0"}
		for _, h := range otherHosts {
			if !slices.Contains(hosts, h) {
				hosts = append(hosts, h)
			}
		}
		for _, h := range hosts {
			prefixes = append(prefixes,
				schema.HostPrefix(h), schema.InterfacesPrefix(h), schema.VolumesPrefix(h), schema.ContainersPrefix(h),
				schema.StatusHostPrefix(h), schema.StatusContainersPrefix(h), schema.MemberHostPrefix(h))
		}
	}
	var out []Scope
	for _, p := range prefixes {
		s := Scope{Prefix: p}
		s.Want = r.Allows(p, s.ProbeKey())
		out = append(out, s)
	}
	return out, nil
}

// ProbeResult is what an identity could do in a scope. Errors say why an
// operation was refused (etcd's "permission denied", never a secret).
type ProbeResult struct {
	Scope
	Got                          Access
	ReadErr, WriteErr, DeleteErr error
	// Leftover is set when the probe key was written but could not be
	// deleted again with the same identity.
	Leftover bool
}

// OK reports whether the identity could do exactly what it should: read
// when Want has Read, write and delete when Want has Write.
func (p ProbeResult) OK() bool { return p.Got == p.Want }

// Probe tries, with this client's identity, a prefix read of the scope, a
// put of its probe key and a delete of it. A read is a count-only range
// read (no values are fetched). Got has Write only when both the put and
// the delete were allowed. Errors other than a refusal (etcd unreachable)
// are returned.
func Probe(ctx context.Context, st *store.Client, s Scope) (ProbeResult, error) {
	res := ProbeResult{Scope: s}
	refused := func(err error) (bool, error) {
		switch {
		case err == nil:
			return false, nil
		case errors.Is(err, rpctypes.ErrPermissionDenied), errors.Is(err, rpctypes.ErrUserEmpty),
			errors.Is(err, rpctypes.ErrInvalidAuthToken):
			return true, nil
		}
		return false, err
	}
	_, err := st.Etcd().Get(ctx, s.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if no, ferr := refused(err); ferr != nil {
		return res, fmt.Errorf("probing read of %s: %w", s.Prefix, ferr)
	} else if no {
		res.ReadErr = err
	} else {
		res.Got |= Read
	}
	key := s.ProbeKey()
	_, err = st.Etcd().Put(ctx, key, "probe by uspacectl auth check; safe to delete")
	put, ferr := refused(err)
	if ferr != nil {
		return res, fmt.Errorf("probing write of %s: %w", key, ferr)
	}
	if put {
		res.WriteErr = err
	}
	_, err = st.Etcd().Delete(ctx, key)
	del, ferr := refused(err)
	if ferr != nil {
		return res, fmt.Errorf("probing delete of %s: %w", key, ferr)
	}
	if del {
		res.DeleteErr = err
	}
	res.Leftover = !put && del
	if !put && !del {
		res.Got |= Write
	}
	return res, nil
}
