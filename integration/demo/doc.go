// Package demo runs `make demo`'s script so the README's main command
// cannot rot.
//
// This file only holds the package documentation: the test is demo_test.go
// (package demo_test). Nothing imports it.
package demo
