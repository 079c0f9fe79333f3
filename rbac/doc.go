// Package rbac is uspace's security model as code: the identities of
// ARCHITECTURE.md's Security table as etcd roles and users (HostRole,
// ContainersRole, AdminRole), the functions that make etcd hold exactly
// them (EnsureRole, EnsureUser, EnsureRoot, EnsureIdentity, RemoveIdentity,
// Audit), and the probes that prove what an identity can really do (Scopes,
// Probe). `uspacectl auth` is its only product caller.
//
// etcd grants permissions per key range (READ, WRITE or READWRITE); every
// grant here is a prefix range ending in "/", so host "a" never matches host
// "ab". A user with the same name as its role holds that role and nothing
// else. Users authenticate either with their password or, when etcd runs
// with --client-cert-auth, with a client certificate whose Common Name is the
// user name (etcd maps the verified certificate's CN to the user).
//
// Imports: schema (the key layout the grants are made of) and store (the
// connection); never a component (cni, volume, agent) and never etcd's
// server. Connecting, TLS diagnosis included (store.DiagnoseTLS), stays in
// store.
//
// Tests: rbac_test.go, against a real embedded etcd with auth enabled; the
// refusals on a real TLS etcd are in integration/security.
package rbac
