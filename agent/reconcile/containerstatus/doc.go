// Package containerstatus is the host agent's clean-up after container
// agents that are gone: the statuses of a container's interfaces, left
// when the container stopped before its CNI DEL (the order Docker and
// Kubernetes use), are removed once its meta is deleted and its own agent
// had a grace to remove them. Each gone container is tracked until its
// statuses are removed or it comes back (Waiting counts them).
//
// It imports agent/statuswriter, schema and store; never an agent
// (agent/host wires it to its containers controller).
//
// Tests: reconcile_test.go here (package containerstatus_test, on the
// embedded etcd of integration/harness); through the host agent in
// integration/hostagent.
package containerstatus
