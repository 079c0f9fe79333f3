// Command uspace-start is the entrypoint of the images that run a dataplane
// and a uspace agent in one container: it starts VPP (and SPDK, when asked),
// waits for their API sockets, then runs the agent. It is PID 1 there, so it
// forwards SIGTERM/SIGINT, reaps every child, and stops the whole container
// when any of its processes ends, so that the container's restart policy
// (Docker, Kubernetes) starts everything again in order.
//
// It replaces the seed image's vppcni.sh ("vpp -c /etc/vpp/startup.conf &",
// sleep 2, then vpp-app): no sleep, the agent starts once VPP's socket exists.
//
//	uspace-start [flags] [--] COMMAND [ARG...]
//
// A main package beside the Dockerfile that uses it (one of
// ARCHITECTURE.md's deliberate exceptions): it imports no uspace package.
//
// Tests: integration/deployments builds the images that use it.
package main
