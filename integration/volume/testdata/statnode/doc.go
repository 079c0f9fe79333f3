// Command statnode prints what a path is: the program of the FROM-scratch
// image the Docker CLI test runs, to show the volume's device node as the
// container sees it.
//
// It imports no uspace package. Built into the test image by
// integration/volume (docker_test.go).
package main
