// Command uspace-etcd runs the single-member etcd of store/embedetcd as a
// process of its own: `uspace-agent host --embedded-etcd` starts it as its
// child, so the agent, which every container also execs, does not link the
// etcd server and pay its package initialisation at every start. It is the
// only binary that links store/embedetcd, which make lint checks.
//
// With its parent it speaks through inherited pipes, named by flags so that
// it also runs on its own: --ready-fd, where it writes its client
// endpoints (one line, comma-separated) once etcd serves, then closes it;
// --lifeline-fd, whose end of file (its parent gone, even SIGKILLed) stops
// it as SIGTERM and SIGINT do: etcd closed, its data kept.
//
// Tests: main_test.go; with the agent in cmd/uspace-agent/embedded_test.go.
package main
