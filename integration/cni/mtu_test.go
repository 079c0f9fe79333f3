package cni_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/realdp"
)

// TestMTUFollowsUplink: a host agent joined to networks that span hosts
// over an uplink of MTU 1500 gives the uplink 1500 in VPP and an interface
// of such a network 1450 (VXLAN's 50 bytes less); its status says so, the
// CNI plugin carries it into the container-side intent and the result, and
// the container agent sets it in the container's VPP. A network that stays
// on the host keeps VPP's default. When the uplink's MTU changes, the
// agent follows it at its next start, CHECK names the container side left
// behind, and a repeated ADD carries the new MTU over. Run on vppsim and,
// where installed, on a real VPP.
func TestMTUFollowsUplink(t *testing.T) {
	t.Run("vppsim", func(t *testing.T) { mtuFollowsUplink(t, false) })
	t.Run("vpp", func(t *testing.T) {
		realdp.NeedVPP(t)
		mtuFollowsUplink(t, true)
	})
}

func mtuFollowsUplink(t *testing.T, realVPP bool) {
	uplink := veth(t, 1500)
	e := newEnvOn(t, harness.HostOptions{RealVPP: realVPP, VPPPlugins: []string{"vxlan", "af_packet"},
		AgentFlags: []string{"--underlay-ip", "192.0.2.1/24", "--uplink", uplink}})
	span := e.netconf(conf11(readmeMemif), func(m map[string]any) { sect(m, "uspace")["vni"] = 4242 })
	local := e.netconf(conf11(headNAD), nil)
	r := rt("mtuspan", newNS(t).Path(), "net1")
	res := add(t, e, span, r)
	rl := rt("mtulocal", newNS(t).Path(), "net1")
	resLocal := add(t, e, local, rl)

	ctr := e.etcd.StartContainer(t, e.hostName, e.host.SharedDir, []string{"--container-id", r.ContainerID})
	e.wantMTU(t, ctr, r, res, 1450)
	if st := e.status(rl.ContainerID, "net1"); st.MTU != 0 || resLocal.Interfaces[1].Mtu != 0 || e.containerIntent(rl.ContainerID, "net1").MTU != 0 {
		t.Errorf("a network on this host only: status mtu %d, result mtu %d: want VPP's default", st.MTU, resLocal.Interfaces[1].Mtu)
	}
	hostVPP := e.vppClient()
	if got := ifMTU(t, hostVPP, "host-"+uplink); got != 1500 {
		t.Errorf("uplink in VPP: MTU %d, want its Linux interface's 1500", got)
	}
	// A VPP restarted empty gets the MTUs back with the interfaces.
	if realVPP {
		e.host.RealVPP.Kill(t)
		e.host.RealVPP.Start(t)
	} else if err := e.host.VPP.Restart(); err != nil {
		t.Fatal(err)
	}
	eventually(t, harness.WaitTimeout, "the uplink and the host side re-made with their MTUs", func() bool {
		// Re-made, the memif may have another name: the status says which.
		st := e.status(r.ContainerID, "net1")
		return ifMTU(t, hostVPP, "host-"+uplink) == 1500 && st.Ready && ifMTU(t, hostVPP, st.InterfaceName) == 1450
	})
	if err := e.cni.CheckNetworkList(bg(), span, r); err != nil {
		t.Errorf("CHECK: %v", err)
	}

	// The uplink's MTU grows; the agent reads it when it starts.
	if out, err := exec.Command("ip", "link", "set", uplink, "mtu", "9000").CombinedOutput(); err != nil {
		t.Fatalf("ip link set mtu: %v: %s", err, out)
	}
	e.host.Agent.Stop(5 * time.Second)
	e.host.RestartAgent(t)
	eventually(t, harness.WaitTimeout, "the host side at MTU 8950", func() bool { return e.status(r.ContainerID, "net1").MTU == 8950 })
	if err := e.cni.CheckNetworkList(bg(), span, r); err == nil || !strings.Contains(err.Error(), "MTU 8950 on the host side, the container side has 1450") {
		t.Errorf("CHECK with the container side behind: %v", err)
	}
	e.wantMTU(t, ctr, r, add(t, e, span, r), 8950)
	if err := e.cni.CheckNetworkList(bg(), span, r); err != nil {
		t.Errorf("CHECK after the repeated ADD: %v", err)
	}
	if err := e.cni.DelNetworkList(bg(), span, r); err != nil {
		t.Fatal(err)
	}
	if err := e.cni.DelNetworkList(bg(), local, rl); err != nil {
		t.Fatal(err)
	}
}

// veth makes a veth pair whose first end, returned, has MTU mtu: an uplink
// the agent and the VPP can see.
func veth(t *testing.T, mtu int) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	a, z := "usu"+hex.EncodeToString(b[:]), "usv"+hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "link", "add", a, "mtu", strconv.Itoa(mtu), "type", "veth", "peer", "name", z).CombinedOutput(); err != nil {
		t.Skipf("cannot create a veth pair: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", a).Run() })
	return a
}

func add(t *testing.T, e *env, list *libcni.NetworkConfigList, r *libcni.RuntimeConf) *types100.Result {
	t.Helper()
	res, err := e.cni.AddNetworkList(bg(), list, r)
	if err != nil {
		t.Fatalf("ADD %s: %v", r.ContainerID, err)
	}
	out, err := types100.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantMTU checks every place the MTU of attachment r shows: the ADD's
// result (both ends), the host side's status and VPP interface, the
// container-side intent and, once its agent applied it, the container's VPP.
func (e *env) wantMTU(t *testing.T, ctr *harness.Container, r *libcni.RuntimeConf, res *types100.Result, want uint32) {
	t.Helper()
	for _, itf := range res.Interfaces {
		if itf.Mtu != int(want) {
			t.Errorf("result interface %s: mtu %d, want %d", itf.Name, itf.Mtu, want)
		}
	}
	st := e.status(r.ContainerID, "net1")
	if ci := e.containerIntent(r.ContainerID, "net1"); st.MTU != want || ci.MTU != want {
		t.Errorf("host-side status mtu %d, container-side intent mtu %d, want %d", st.MTU, ci.MTU, want)
	}
	if got := ifMTU(t, e.vppClient(), st.InterfaceName); got != want {
		t.Errorf("host side %s in VPP: MTU %d, want %d", st.InterfaceName, got, want)
	}
	ctrVPP := vpp.Dial(vpp.Config{Socket: ctr.VPPSocket, ClientName: "uspace-test-operator"})
	defer ctrVPP.Close()
	eventually(t, harness.WaitTimeout, "the container agent to set the MTU", func() bool {
		ctx, cancel := context.WithTimeout(bg(), time.Second)
		defer cancel()
		ifs, err := ctrVPP.Interfaces(ctx)
		for _, i := range ifs {
			if _, ours := i.Owner(); ours && err == nil {
				return i.MTU == want
			}
		}
		return false
	})
}

// ifMTU is the L3 MTU of the interface VPP names name (0: none such, or
// VPP not answering).
func ifMTU(t *testing.T, c *vpp.Client, name string) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg(), time.Second)
	defer cancel()
	ifs, _ := c.Interfaces(ctx)
	for _, i := range ifs {
		if i.Name == name {
			return i.MTU
		}
	}
	return 0
}
