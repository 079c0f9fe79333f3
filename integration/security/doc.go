// Package security proves uspace's security model on a real etcd binary
// run with TLS and client-certificate auth, auth enabled and the roles of
// ARCHITECTURE.md's Security table (made by store/rbac.go): every refusal
// is tried, and every log line and error the tests see is scanned for
// secrets.
//
// This file only holds the package documentation: the tests are the _test.go
// files here (package security_test). Nothing imports it.
package security
