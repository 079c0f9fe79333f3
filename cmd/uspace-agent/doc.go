// Command uspace-agent runs the uspace reconcilers: `host` once per host,
// `container` inside each application container.
//
// It is the only binary that links store/embedetcd (`host --embedded-etcd`).
//
// Tests: main_test.go; the agents end to end in integration/hostagent,
// integration/containeragent and integration/cluster.
package main
