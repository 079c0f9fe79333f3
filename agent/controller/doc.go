// Package controller is the level-triggered core shared by the host and the
// container agent: a cache of desired state fed from a list-then-watch, a
// work queue that de-duplicates keys and retries failures with capped
// exponential backoff, and one reconcile function per key.
//
// It imports store only. It must not import schema or any other agent
// package: it knows keys and values, not what they mean; status writing is
// agent/statuswriter's. Metrics are registered on a registry its caller
// passes (nil: none).
//
// Tests: controller_test.go here (EnqueueAll re-runs a failing key at once
// instead of after its backoff); every agent test runs it
// (integration/hostagent, integration/containeragent, integration/cluster).
package controller
