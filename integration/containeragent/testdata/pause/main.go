// Command pause keeps a sandbox container running until it is stopped,
// like Kubernetes' pause image: the FROM-scratch test image has no shell.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
