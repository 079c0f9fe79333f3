// Package vpp is uspace's VPP dataplane driver. It talks to VPP's binary API
// socket through GoVPP (go.fd.io/govpp core + adapter/socketclient + the
// generated binapi RPC services) and offers a small, reconciler-oriented Go
// API:
//
//   - every operation takes a context.Context and is idempotent: deleting
//     what is already gone is not an error, creating what already exists in
//     identical form returns the existing object (VPP's own retvals such as
//     SUBIF_ALREADY_EXISTS (-68), ADDRESS_IN_USE
//     (-105), BD_ALREADY_EXISTS (-119), NO_SUCH_ENTRY (-6),
//     ADDRESS_NOT_FOUND_FOR_INTERFACE (-60) are turned into that behaviour
//     after reading the actual state back);
//   - every kind of object has a dump that reads the actual state back;
//   - ownership: everything uspace creates carries a tag "uspace:<owner>"
//     (interfaces through sw_interface_tag_add_del or the vhost-user create
//     call, bridge domains through bd_tag). An existing object with a
//     foreign tag is never adopted or modified by a create; an untagged
//     memif or vhost-user interface that is otherwise identical is adopted
//     and tagged (this is what a crash between "create" and "tag" leaves
//     behind: its socket path is uspace's). An af_packet interface or a
//     VXLAN tunnel, which VPP names by what it is (a Linux interface;
//     endpoints and VNI) and an operator may well have made, is never
//     adopted by a create: one that exists is ErrConflict, and telling a
//     crash's leftover from an operator's is the caller's (vppstate).
//     Deletes take handles; callers pass only handles they got from owned
//     objects;
//   - errors are *OpError values naming the operation and the object; they
//     wrap GoVPP's api.VPPApiError so the retval stays inspectable with
//     errors.As (or Retval), and match ErrNotFound / ErrConflict /
//     ErrInvalid / ErrNotConnected with errors.Is where that applies.
//
// Connection handling: Dial starts a supervisor. Each connection cycle
// opens a fresh GoVPP connection with core.Connect over the socket client,
// checks it and publishes it, then pings VPP every HealthInterval; a ping
// that fails outright (the socket is gone, e.g. VPP restarted) or
// HealthFailures timed-out pings end the cycle. Cycles are spaced by
// store.NewBackoff, the code base's one backoff (the only uspace package
// the driver imports; it knows nothing of etcd). (GoVPP's own
// core.AsyncConnect is not used: in v0.12.0 its in-place reconnect rewrites
// the connection's message-id maps without the lock their readers take, a
// data race the race detector reports as soon as a dump ran before a
// reconnect.) Each new connection is checked for message compatibility
// (Channel.CheckCompatiblity over every message the driver sends or
// receives) and reported on Events(): EventConnected carries the VPP
// version and vpe_pid; Restarted says the pid changed, i.e. VPP restarted
// and its state is gone. Every EventConnected must make the caller re-list
// and reconcile everything; EventIncompatible names the missing or
// mismatched messages and the VPP version, and operations fail with that
// *IncompatibleError until a compatible VPP is connected.
//
// Optional features: the messages of VPP plugins many installations run
// without (FeatureVXLAN: vxlan_plugin.so, VXLANTunnels/CreateVXLANTunnel/
// DeleteVXLANTunnel; FeatureAFPacket: af_packet_plugin.so, AFPackets/
// CreateAFPacket/DeleteAFPacket) are not in RequiredMessages: a VPP without
// them is accepted. Each connection checks them too (OptionalMessages);
// CheckFeature(ctx, f) returns nil, or a *FeatureError matching
// ErrUnsupported ("VPP <version> lacks the vxlan plugin (<messages> unknown
// or CRC mismatch): enable vxlan_plugin.so"), and the feature's
// operations fail at once with that error.
//
// Interface events: a client dialled with Config.InterfaceEvents
// subscribes each connection to sw_interface_event (want_interface_events)
// before publishing it, and keeps the latest event per sw_if_index (a
// deletion is never hidden by what came after it) until
// TakeInterfaceEvents; InterfaceEvents() signals that some wait. No
// polling: VPP pushes them.
//
// Throughput: single operations cost one round trip each (plus reads where
// idempotency needs them). For bulk work Pipeline sends many requests on one
// GoVPP stream without waiting for each reply (a bounded window of requests
// in flight, replies matched in order), and CreateMemifs uses it to create
// and tag many memifs in two pipelined phases.
package vpp
