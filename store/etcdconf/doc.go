// Package etcdconf says how to reach etcd and as whom: the Config every
// binary shares (endpoints, TLS files, user and password), read from flags,
// the USPACE_ETCD_* environment or the CNI network config; the rules for
// password files; the client TLS configuration; and DiagnoseTLS, which
// names the TLS alert behind a refused connection.
//
// It is apart from package store so that both etcd clients can use it:
// store (etcd's client/v3, for the long-running binaries) and store/lite
// (the CNI plugin's). Imports: the standard library and pflag only; no
// etcd package, so linking it costs a short-lived process nothing of etcd.
//
// Tests: config_test.go here; connecting with it is
// tested in store and store/lite against a real etcd.
package etcdconf
