package harness

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/vppsim"
)

// Container is a simulated application container: its own VPP simulator
// and a container agent process.
type Container struct {
	Host      string
	VPPSocket string
	SharedDir string
	VPP       *vppsim.Sim
	Agent     *Proc
}

// StartContainer starts a VPP simulator for a container on host and a
// container agent with extra flags (e.g. --container-id) and env.
func (e *Etcd) StartContainer(t testing.TB, host, sharedDir string, flags []string, env ...string) *Container {
	t.Helper()
	dir := ShortTempDir(t)
	c := &Container{Host: host, VPPSocket: filepath.Join(dir, "api.sock"), SharedDir: sharedDir}
	var err error
	c.VPP, err = vppsim.Start(vppsim.Options{Socket: c.VPPSocket, RuntimeDir: dir})
	if err != nil {
		t.Fatalf("start container vppsim: %v", err)
	}
	t.Cleanup(func() { c.VPP.Close() })
	args := append([]string{"container",
		"--host", host,
		"--etcd-endpoints", strings.Join(e.Endpoints, ","),
		"--vpp-socket", c.VPPSocket,
		"--shared-dir", sharedDir,
	}, flags...)
	c.Agent = StartProc(t, "container agent", binaries.Path(t, "uspace-agent"), args, env...)
	return c
}
