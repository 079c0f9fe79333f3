// Package store is uspace's only way into etcd: atomic multi-key
// transactions with guards (Apply, ApplyIfUnchanged), guarded
// read-modify-writes retried on conflict (RetryOnConflict, Update,
// UpdateUnderPrefix), list-then-watch from a revision that survives
// reconnects and compaction (ListWatch), waiting for a key to reach a state
// (WaitFor), lease-bound registrations that a restarted process resumes
// and whose holders are judged alive by their keep-alives (Register,
// Resign), the connection every binary shares (Config, Connect,
// DiagnoseTLS), and uspace's one transient-vs-terminal error classifier
// (Classify, errors.go), which every retry decision asks: its own loops',
// the CNI plugin's and the agents' statuses'.
//
// Keys are strings and values are bytes: the schema lives elsewhere, so this
// package can be reused and tested without it. Config lives in
// store/etcdconf, shared with the CNI plugin's client (store/lite), which
// does not link etcd's client/v3.
//
// Imports: no uspace package (not schema: the roles and identities built on
// the key layout live in package rbac) and no etcd server code (the
// embedded etcd is store/embedetcd); `go list -deps ./store` shows it, and
// make lint checks the binaries that link store for the etcd server.
//
// Tests: the *_test.go files here, against real etcd (embedded, or etcd's
// integration cluster for the multi-member and disruption cases); no mock.
package store
