package harness

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/realdp"
	"github.com/uspace-io/uspace/integration/vppsim"
)

// Container is an application container of a test: its own VPP
// (a simulator, or a real VPP in the container's network namespace) and a
// container agent process.
type Container struct {
	Host      string
	VPPSocket string
	SharedDir string
	// VPP is the simulator; nil when RealVPP runs instead.
	VPP     *vppsim.Sim
	RealVPP *realdp.VPP
	Agent   *Proc
}

// ContainerOptions choose a container's VPP.
type ContainerOptions struct {
	// RealVPP runs a real VPP in Netns (a path such as
	// /var/run/netns/<name>) instead of the simulator.
	RealVPP bool
	Netns   string
	// EndpointNetns runs the container agent in this network namespace
	// (a path) with neither etcd endpoint nor credential: it reaches etcd
	// through the host agent's endpoint there.
	EndpointNetns string
}

// StartContainer starts a VPP simulator for a container on host and a
// container agent with extra flags (e.g. --container-id) and env.
func (e *Etcd) StartContainer(t testing.TB, host, sharedDir string, flags []string, env ...string) *Container {
	t.Helper()
	return e.StartContainerOn(t, host, sharedDir, ContainerOptions{}, flags, env...)
}

// StartContainerOn starts the container's VPP as opts choose and a
// container agent with extra flags and env.
func (e *Etcd) StartContainerOn(t testing.TB, host, sharedDir string, opts ContainerOptions, flags []string, env ...string) *Container {
	t.Helper()
	c := &Container{Host: host, SharedDir: sharedDir}
	if opts.RealVPP {
		c.RealVPP = realdp.StartVPP(t, realdp.VPPOptions{Name: "ctr", Netns: opts.Netns})
		c.VPPSocket = c.RealVPP.APISocket
	} else {
		dir := ShortTempDir(t)
		c.VPPSocket = filepath.Join(dir, "api.sock")
		var err error
		c.VPP, err = vppsim.Start(vppsim.Options{Socket: c.VPPSocket, RuntimeDir: dir})
		if err != nil {
			t.Fatalf("start container vppsim: %v", err)
		}
		t.Cleanup(func() { c.VPP.Close() })
	}
	args := []string{"container", "--host", host, "--vpp-socket", c.VPPSocket, "--shared-dir", sharedDir}
	path := binaries.Path(t, "uspace-agent")
	if opts.EndpointNetns != "" {
		args = append([]string{"--net=" + opts.EndpointNetns, path}, args...)
		path = "/usr/bin/nsenter"
		env = append(env, "USPACE_ETCD_ENDPOINTS=")
	} else {
		args = append(args, "--etcd-endpoints", strings.Join(e.Endpoints, ","))
	}
	c.Agent = StartProc(t, "container agent", path, append(args, flags...), env...)
	return c
}
