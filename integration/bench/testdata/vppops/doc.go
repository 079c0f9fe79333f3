// Command vppops is the dataplane floor of the benchmark: it issues the VPP
// calls an agent makes, straight through agent/vpp, from its own process
// (as an agent and a real VPP are separate processes), and prints how long
// each round took as JSON nanoseconds.
//
//	vppops -socket S -dir D -mode host      -n N -warmup W  # an ADD's host side, one call after another
//	vppops -socket S -dir D -mode container -n N -warmup W  # a container side
//	vppops -socket S -dir D -mode cold      -n N            # N memifs created pipelined (one duration)
//	vppops -socket S -dir D -mode serve                     # one round per stdin line "host" or "container",
//	                                                        # its nanoseconds on a stdout line each
//
// It imports agent/vpp and agent/vppstate only: it talks to no etcd
// (agent/vpp links package store for its backoff, not a connection) and
// runs no agent loop.
// Built and run by integration/bench (floors_test.go).
package main
