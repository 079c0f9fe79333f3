// Package harness starts the real parts of a uspace set-up for tests: etcd
// (embedded or a tests/v3 cluster), the dataplane simulators over real
// sockets, and the real agent binaries as processes.
//
// It may import everything (integration/ is outside ARCHITECTURE.md's
// layering); no product package may import it.
//
// Tests: none of its own; it is exercised by every test under integration/
// that starts agents.
package harness
