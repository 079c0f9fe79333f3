// Command uspace-agent runs the uspace reconcilers: `host` once per host,
// `container` inside each application container.
//
// It does not link the etcd server, which make lint checks: every container
// agent's exec would pay its package initialisation. `host --embedded-etcd`
// runs etcd as its child, cmd/uspace-etcd, found beside this executable or
// on $PATH (embedded.go): the child reports its endpoints on a readiness
// pipe, stops when the agent stops it or when its lifeline pipe closes
// (the agent gone, even SIGKILLed), and its exit stops the agent non-zero.
//
// Tests: main_test.go, embedded_test.go (the agent and its etcd child as
// real processes); the agents end to end in integration/hostagent,
// integration/containeragent and integration/cluster.
package main
