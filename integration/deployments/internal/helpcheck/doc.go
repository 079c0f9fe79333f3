// Package helpcheck lets the deployment tests hold the deployments to what
// the binaries really accept: it runs a binary's --help and reads its flags
// (with their defaults) and the environment variables it names, and builds
// the two small programs that live under deployments/images/.
//
// Internal to integration/deployments, whose tests (systemd_test.go,
// compose_test.go, kubernetes/) are its only users and its tests. It must
// not be imported by product code.
package helpcheck
