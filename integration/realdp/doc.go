// Package realdp starts the real dataplanes for tests: VPP 25.02 and SPDK
// 24.09, each instance in a directory of its own, without hugepages, with
// the flags of ../shared/dataplanes/README.md.
//
// The binaries are found, in order, through USPACE_VPP_BIN / USPACE_SPDK_BIN,
// then `vpp` / `spdk_tgt` on PATH, then where `make dataplanes` installs them
// (/opt/vpp-25.02, /opt/uspace-dp/spdk-24.09). A test that needs one calls
// NeedVPP / NeedSPDK first: on a machine without it the test is skipped with
// one line naming what is missing.
//
// Instances are processes of the test (started through integration/spawn, so
// they die with it); every test's cleanup kills its instances and removes the
// shared-memory files they leave behind. Kill is a crash (SIGKILL) and Start
// brings the same instance back empty on the same sockets, as a supervisor
// restarting a crashed dataplane would.
//
// The tests in this folder are the real-dataplane tier: every flow that
// touches a dataplane, run end to end against the real ones (CNI through
// libcni into network namespaces, agents as processes, a ping between two
// containers' VPPs).
//
// Besides instances it makes the network around them (Netns, an
// Underlay of host namespaces joined by a bridge) and reads what a
// running instance holds for leak checks: VPP's buffers, main heap and
// binary-API clients (vppstats.go), SPDK's DPDK heap (spdkstats.go).
//
// Imports: the standard library and integration/spawn only. It must not
// import any agent package (nor cni, store or schema): it starts
// dataplanes, it does not drive them. Only its tests import what they
// exercise (agent/vpp, integration/vppsim, integration/harness,
// integration/binaries, schema).
//
// Tests: in this folder (package realdp_test); each skips with one line on
// a machine without the dataplane it needs.
package realdp
