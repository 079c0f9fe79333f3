// Command noop is the exec floor of the benchmark: a static Go binary that
// does nothing, so that fork+exec, the Go runtime's start and exit are all
// it costs. Any plugin exec'd per CNI call pays at least this.
package main

func main() {}
