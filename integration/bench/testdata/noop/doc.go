// Command noop is the exec floor of the benchmark: a static Go binary that
// does nothing, so that fork+exec, the Go runtime's start and exit are all
// it costs. Any plugin exec'd per CNI call pays at least this.
//
// It imports nothing but the Go runtime (that is its point). Built and timed
// by integration/bench.
package main
