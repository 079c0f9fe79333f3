package spawn

import (
	"os/exec"
	"runtime"
	"syscall"
)

var reqs = make(chan req)

type req struct {
	cmd  *exec.Cmd
	errc chan error
}

func init() {
	go func() {
		runtime.LockOSThread()
		for r := range reqs {
			r.errc <- r.cmd.Start()
		}
	}()
}

// Start starts cmd with Pdeathsig SIGKILL from the long-lived thread.
func Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	errc := make(chan error)
	reqs <- req{cmd, errc}
	return <-errc
}
