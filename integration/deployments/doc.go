// Package deployments holds deployments/ to what the binaries accept:
// the systemd units pass `systemd-analyze verify` and name only flags, env
// and paths the binaries know; the images build and the compose cluster
// runs a real multi-host flow (compose_test.go).
//
// This file only holds the package documentation: the tests are the _test.go
// files here (package deployments_test), which also build the image
// entrypoints of deployments/images. Nothing imports it.
package deployments
