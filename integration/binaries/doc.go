// Package binaries gives tests the real executables of this module: the ones
// `make build`/`make tools` put in $USPACE_BIN_DIR, or freshly built ones
// when a test runs outside make.
//
// It imports no uspace package; no product package may import it.
//
// Tests: none of its own; every test that runs a binary of cmd/ uses it.
package binaries
