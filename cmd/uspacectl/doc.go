// Command uspacectl inspects and administers uspace's state in etcd.
//
// Subcommands: get (desired vs observed state), gc (a host's leftovers),
// volume unmount, and auth (auth.go and one auth_*.go file per subcommand:
// init, add-host, remove-host, check; the roles come from package rbac).
//
// Imports: store, schema, rbac, volume; never the etcd server, which make
// lint checks.
//
// Tests: integration/security (auth), integration/cluster (gc),
// integration/volume (volume unmount) and the demo and deployment tests.
package main
