// Package vppsim is a wire-level simulator of VPP's binary API socket.
//
// It listens on a unix stream socket (VPP's `socksvr`, default
// /run/vpp/api.sock) and speaks the protocol GoVPP's socket client
// (go.fd.io/govpp/adapter/socketclient) uses, unchanged:
//
//   - framing: a 16-byte header whose bytes 8..11 carry the big-endian payload
//     length (bytes 0..7 and 12..15 of incoming headers are ignored, GoVPP
//     leaves junk there), followed by the big-endian binapi payload;
//   - the sockclnt_create handshake (hard-coded message id 15) answered with a
//     client index and a message table listing exactly the messages the
//     simulator implements as "<name>_<crc>";
//   - requests decoded and replies encoded with GoVPP's own generated binapi
//     types and codec; replies copy the request context; dumps answer with N
//     details messages, the client's trailing control_ping then closes the
//     stream with a control_ping_reply;
//   - sockclnt_delete, many concurrent clients.
//
// Behind the wire sits a state machine for what uspace drives: sw_if_index
// allocation (local0 = 0 exists), memif socket filenames (id 0 = the default
// <runtime-dir>/memif.sock), memif interfaces (memif<socket>/<id>), vhost-user
// interfaces (VirtualEthernet0/0/<n>), bridge domains and their members,
// admin state, MTU, MAC, IP addresses, interface tags, interface events and
// IPv4/IPv6 routes in table 0. Return values follow VPP's VNET_API_ERROR_*
// codes as the real handlers produce them (see the handler comments).
//
// Like a real VPP it creates socket files: a memif in master role listens on
// its socket file (SOCK_SEQPACKET, as VPP does), or on an abstract socket
// for a filename "abstract:<name>[,netns_name=<netns>]", inside that network
// namespace (entered as VPP does; one it cannot enter fails the master with
// -14 and leaves VPP 25.02's broken listener count), and a vhost-user
// interface in server mode listens on its path (SOCK_STREAM). As VPP 25.02 does, the
// memif socket file stays on disk after its last master goes (the vhost-user
// one is removed with its interface).
//
// Where it answers differently from VPP 25.02 was measured side by side
// (integration/realdp's differential test sends both the same calls and
// compares every answer) and changed to match: a socket filename in a
// missing directory is accepted and the master on it fails (-14); routes
// added through the API stay after their interface goes; an address's
// routes exist only while its interface is up, the attached one shown as
// the address with the subnet length, plus network and broadcast /32
// drops; an IP-mode memif is type 0 with link MTU 0 and per-protocol MTUs
// 0, and refuses a MAC (-9); sw_interface_set_mtu takes any value as
// given, on every kind of interface; a memif_create in inject-punt mode
// crashes VPP, so it crashes the simulator too (every connection closes,
// the state restarts empty).
// Not simulated: frames (no data path), so nothing here can ping.
//
// Fault controls (Go API and the JSON control protocol of ServeControl): fail
// the next N calls of a named message with a retval, add latency, drop all
// client connections, stop/start/restart with empty state (a restart looks to
// clients like a VPP crash and restart: connections close, the API socket
// disappears and comes back, vpe_pid changes, message ids change, stale
// memif/vhost socket files stay behind), and a JSON state snapshot.
//
// Files mirror the driver agent/vpp, one per API area: memif.go, vhost.go,
// l2.go, iface.go, route.go, afpacket.go, vxlan.go hold the handlers (and
// their state transitions); handlers.go is the registration table, the
// VNET_API_ERROR_* values and memclnt/vpe. The plumbing is apart from the
// state: wire.go (framing, codec, message table) and conn.go (connections,
// dispatch, handshake, events); sim.go the lifecycle and fault controls,
// state.go and tunnels.go the state, snapshot.go and control.go the
// observation and control surfaces.
//
// Imports: GoVPP (binapi, codec) and the standard library only. It must not
// import any uspace package, agent/vpp least of all: the simulator stands in
// for VPP, so it must not share code with the driver it is a test for. Its
// own tests (package vppsim_test, in this folder) import none either.
//
// Tests: this folder (the wire format, GoVPP's own client against it, the
// state machine); agent/vpp's tests drive the driver against it;
// cmd/uspace-vppsim/main_test.go the binary; integration/realdp's
// TestSimulatorAnswersAsRealVPP compares it answer by answer with a real
// VPP 25.02.
package vppsim
