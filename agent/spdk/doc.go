// Package spdk drives an SPDK target (spdk_tgt / vhost) over its JSON-RPC
// 2.0 unix socket: malloc bdevs and vhost-user blk/scsi controllers.
//
// The Client keeps one connection and matches replies to requests by id,
// so concurrent calls share it. A reader goroutine notices at once when
// SPDK closes the connection (crash, restart): Disconnected returns a
// channel closed at that moment, and the next call dials again, which
// increases Generation. A new generation means SPDK may have lost every bdev
// and controller, so a reconciler should then compare its desired state with
// fresh dumps rather than trust what it created before; waiting on
// Disconnected gives it that event without polling.
//
// SPDK's own errors come back as *RPCError (errors.As-able); use
// IsNotFound/IsExists/IsBusy/IsInvalid because SPDK's codes are not uniform.
// Transport failures wrap ErrConnection.
//
// It imports no uspace package: a driver knows SPDK, not intents, keys or
// etcd.
//
// Tests: spdk_test.go and process_test.go here, against integration/spdksim
// in process and as the uspace-spdksim process (one of ARCHITECTURE.md's
// deliberate exceptions); on a real SPDK in integration/realdp.
package spdk
