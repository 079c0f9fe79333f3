// Package spawn starts the test suites' child processes (agents, real VPP
// and SPDK) so that they die with the test process, and only then.
//
// Linux sends Pdeathsig when the *thread* that forked the child exits, and
// Go retires threads that a goroutine locked and left (netns helpers do
// that). So every child is started from one locked thread that lives as
// long as the test process.
//
// It imports no uspace package; no product package may import it.
//
// Tests: none of its own; integration/harness and integration/realdp start
// every child through it.
package spawn
