// Package lite is the etcd client of short-lived processes: the CNI
// plugin, exec'd once per ADD and DEL, which with etcd's client/v3 spent
// most of its start initialising etcd's generated API (etcdserverpb and
// the protobuf and gRPC machinery it registers with). lite speaks the same
// gRPC API on the wire, over the standard library's HTTP/2 (TLS with ALPN
// for https:// endpoints, prior-knowledge cleartext for http://), with its
// few messages encoded by hand: transactions with comparisons and reads in
// either branch (Txn), Get, paged List, and WaitFor, which watches one key
// from a state the caller already read. Endpoints are written as for
// client/v3 (http://, https://, host:port, unix sockets); a request that
// could not be sent moves on to the next endpoint, and reads and guarded
// transactions are sent again, to the next endpoint, while etcd cannot
// serve them (no leader, leader changed, timed out, the member stopped
// with them in flight), as client/v3 does with reads. TLS client certificates and
// user/password tokens work as with client/v3, since etcd sees the same
// gRPC calls; etcd's JSON gateway was not used because it refuses a client
// certificate with a Common Name when client-certificate auth and auth are
// both on (etcd's embed/serve.go), which is uspace's secure set-up.
//
// Errors: *Error is etcd's refusal (its gRPC code and message);
// IsUnavailable, IsDenied and NotSent classify any error of a call. The
// unavailable ones also carry a method `Transient() bool`, which is how
// store.Classify, the code base's one transient/terminal classifier,
// recognises errors from outside package store: lite answers the same
// question the same way without importing it.
//
// Imports: the standard library, cenkalti/backoff and store/etcdconf only;
// never etcd's or gRPC's packages (make lint checks the plugin's binary).
// The long-running binaries keep package store (client/v3).
//
// Tests: *_test.go here, against a real embedded etcd, with auth and TLS,
// compaction, cancelled watches and etcd going away.
package lite
