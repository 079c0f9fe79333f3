// Command uspace-vppsim runs the VPP binary-API simulator
// (integration/vppsim) as a process, for tests and demos on machines
// without VPP.
//
// A process wrapper of integration/vppsim, one of the deliberate exceptions
// to "product code does not import integration/" (ARCHITECTURE.md).
//
// Tests: main_test.go.
package main
