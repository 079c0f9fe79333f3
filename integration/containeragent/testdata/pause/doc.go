// Command pause keeps a sandbox container running until it is stopped,
// like Kubernetes' pause image: the FROM-scratch test image has no shell.
//
// It imports no uspace package. Built into the test image by
// integration/containeragent (docker_test.go).
package main
