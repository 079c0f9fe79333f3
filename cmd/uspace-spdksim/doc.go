// Command uspace-spdksim runs the SPDK JSON-RPC simulator (package
// integration/spdksim) as a process that stands in for spdk_tgt:
//
//	uspace-spdksim -r /var/tmp/spdk.sock -S /var/run/kata-containers/vhost-user/block/sockets \
//	    --control-socket /run/spdksim.ctl --state-dump /run/spdksim.json
//
// Flags mirror spdk_tgt where it has one (-r, -S, -m). Signals: SIGTERM and
// SIGINT stop cleanly (RPC and controller sockets removed, state dumped);
// SIGHUP simulates a crash and restart (state lost, controller sockets left
// stale); SIGUSR1 writes the state dump now. The control socket takes one
// JSON command per line (see spdksim.ControlRequest), e.g.
//
//	echo '{"cmd":"fail","method":"bdev_malloc_create","count":1,"code":-12,"message":"Cannot allocate memory"}' \
//	    | socat - UNIX-CONNECT:/run/spdksim.ctl
//
// A process wrapper of integration/spdksim, one of the deliberate exceptions
// to "product code does not import integration/" (ARCHITECTURE.md).
//
// Tests: main_test.go.
package main
