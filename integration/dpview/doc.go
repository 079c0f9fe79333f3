// Package dpview reads the state of a real VPP or SPDK into the
// simulators' snapshot types (vppsim.State, spdksim.Snapshot), so that one
// set of assertions checks a simulated and a real dataplane alike.
//
// It reads through uspace's own drivers (agent/vpp, agent/spdk): their
// dumps are what the simulator-vs-real differential tests
// (integration/realdp, integration/spdksim) hold to the real answers.
// VPP is read with a binary-API client of its own, named ClientName, which
// a check of VPP's clients must expect.
//
// Imports: agent/vpp, agent/spdk, integration/vppsim, integration/spdksim.
//
// Tests: none of its own; the soak (integration/cluster, TestSoak with
// USPACE_SOAK_DATAPLANES=real) runs it after every step.
package dpview
