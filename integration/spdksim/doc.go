// Package spdksim is a wire-level simulator of SPDK's JSON-RPC server
// (spdk_tgt with the bdev_malloc and vhost modules), for machines that cannot
// run SPDK. It listens on a unix stream socket like `spdk_tgt -r <socket>`
// and answers exactly as SPDK v24.09 does, so a client cannot tell the two
// apart for the methods it implements.
//
// # Protocol (lib/jsonrpc)
//
//   - Requests are bare JSON objects back to back: with or without newlines,
//     several in one write, or one split across writes. (A top-level scalar
//     such as 42 is complete only once a delimiter follows, as in SPDK's
//     streaming parser.)
//   - Each reply is one compact JSON object followed by "\n", in request
//     order: {"jsonrpc":"2.0","id":<id>,"result":...} or
//     {"jsonrpc":"2.0","id":<id>,"error":{"code":N,"message":"..."}}.
//   - A request without "id" is a notification: a successful call gets no
//     reply, but an error is still answered, with "id":null (SPDK does this).
//   - Unparseable input: the connection is closed without a reply (SPDK
//     cannot resynchronise a JSON stream).
//   - A request without "jsonrpc" is accepted.
//   - Not an object, a batch array, a wrong "jsonrpc", a non-string
//     "method", an id that is not a string/number/null (or longer than 128
//     bytes), params that are neither object nor array, or any extra
//     top-level key: -32600 "Invalid request". The reply carries the id if
//     it was valid, the object had no unknown key and its jsonrpc and
//     method were right, else "id":null.
//   - Unknown method: -32601 "Method not found".
//
// # Methods and the error codes they really use
//
// SPDK's error codes are not uniform; the simulator copies them:
//
//	spdk_get_version                 params present -> -32602 "spdk_get_version method requires no parameters"
//	bdev_malloc_create               decode failure (numa_id is unknown in 24.09) -> -32603
//	                                 "spdk_json_decode_object failed"; memory is checked first:
//	                                 block_size 0, or over Options.MemLimitBytes (even for a
//	                                 duplicate name) -> -12 "Cannot allocate memory";
//	                                 num_blocks 0, block_size not a multiple of 512, name "" -> -22 "Invalid argument";
//	                                 name (or uuid) taken -> -17 "File exists". Unnamed bdevs are
//	                                 Malloc<N>, N counting unnamed attempts only; aliases hold the UUID
//	bdev_malloc_delete               decode failure -> -32603; unknown -> -19 "No such device"
//	bdev_get_bdevs                   decode failure -> -32603; unknown name -> -19, or with a
//	                                 "timeout" (ms) that runs out before it appears -> -110
//	                                 "Connection timed out"
//	vhost_create_blk_controller      decode (relaxed: extra keys tolerated) failure,
//	                                 bad cpumask, unknown transport -> -32602 "Invalid argument";
//	                                 unknown bdev -> -32602 "No such device";
//	                                 name taken -> -32602 "File exists";
//	                                 socket cannot be created -> -32602 "Input/output error"
//	vhost_create_scsi_controller     as above (strict decoding, no bdev)
//	vhost_scsi_controller_add_target unknown ctrlr -> -32602 "No such device"; not a SCSI
//	                                 controller, target >= 8, unknown bdev -> -32602 "Invalid argument";
//	                                 slot taken -> -32602 "File exists"; no free slot (-1) ->
//	                                 -32602 "No space left on device". Result: the target number.
//	vhost_scsi_controller_remove_target unknown ctrlr -> -32602 "No such device";
//	                                 empty slot -> -32602 "Device or resource busy"
//	vhost_delete_controller          unknown -> -32602 "No such device"; a SCSI controller's
//	                                 targets are removed with it (result true, as v24.09 does)
//	vhost_get_controllers            unknown name, decode failure -> -32603 ("No such device" /
//	                                 "Invalid argument")
//	rpc_get_methods                  the list of implemented methods
//
// Bdev claims: SPDK's vhost controllers open their bdev without claiming it
// (bdev_get_bdevs keeps reporting "claimed": false), so bdev_malloc_delete of
// a bdev in use succeeds and hot-removes it: a blk controller keeps running
// with "bdev": null, a SCSI target using it disappears. The simulator does
// the same rather than inventing a "busy" error SPDK never returns.
//
// # Vhost sockets
//
// Each controller gets a real listening unix socket <VhostDir>/<ctrlr>, like
// `spdk_tgt -S <dir>`; connections to it are accepted and drained. Deleting
// the controller removes the socket. A stale socket file left at that path
// is replaced (SPDK unlinks it); any other file there makes the create fail
// with "Input/output error".
//
// # Faults, restart, snapshot
//
// See Sim.Inject, Sim.FailNext, Sim.DropNext, Sim.SetLatency,
// Sim.DropConnections, Sim.Restart and Sim.Snapshot. Restart models a
// crashed and restarted spdk_tgt: all state is lost, every RPC connection is
// closed, and by default the controller socket files stay behind as stale
// sockets nobody listens on (connecting gives ECONNREFUSED), exactly what a
// crash leaves; RestartOptions.RemoveSockets removes them instead (a clean
// stop). Recreating a controller replaces its stale socket. Without
// RestartOptions.Downtime the new RPC socket is renamed over the old one, so
// there is no window in which the path is missing; with it, the path is
// absent for that long. Close is a clean shutdown: it removes the RPC socket
// and every controller socket, as spdk_tgt does on SIGTERM. Injected faults
// and latency survive a restart; Snapshot.Calls counts over all boots.
//
// The uspace-spdksim command exposes the same controls on a small control
// socket (see ServeControl and ControlRequest).
package spdksim
