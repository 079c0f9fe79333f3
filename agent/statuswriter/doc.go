// Package statuswriter writes an agent's status keys to etcd: only when a
// status changed, batched into transactions by Run, which the agent that
// owns the writer starts in its errgroup (nothing is written before Run
// starts or after it returns). A write etcd refuses for this identity is
// terminal (Failed, Err); other failures are retried with backoff (a change
// etcd refuses on its own, alone and behind the others), logged to the
// logger the owner hands in, and counted in the metrics RegisterMetrics
// exports. Written tells a caller when its change is in etcd.
//
// It imports schema and store only; it must not import agent/controller or
// any dataplane package.
//
// Tests: writer_test.go here, on an embedded etcd (store/embedetcd, test-
// only), including a refused identity and a refused value.
package statuswriter
