package cni

import (
	"context"
	"fmt"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/uspace-io/uspace/schema"
)

// statusTimeout bounds STATUS: the runtime calls it often and expects a
// quick answer.
const statusTimeout = 5 * time.Second

// cmdStatus reports whether ADD can work now: etcd reachable and this
// host's agent registered (its lease-bound key present). Either missing is
// CNI error 50, "plugin not available".
func (p *plugin) cmdStatus(args *skel.CmdArgs) error {
	inv, err := p.setup("STATUS", args, false)
	if err != nil {
		return err
	}
	defer inv.closeLog()
	timeout := min(statusTimeout, time.Duration(inv.us.AddTimeout))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := inv.connect(ctx)
	if err != nil {
		return types.NewError(ErrPluginNotAvailable, err.Error(), "")
	}
	defer st.Close()
	key := schema.AgentKey(inv.us.Host)
	kv, _, err := st.Get(ctx, key)
	if err != nil {
		return types.NewError(ErrPluginNotAvailable, fmt.Sprintf("etcd unreachable while reading %s: %v", key, err), "")
	}
	if kv == nil {
		return types.NewError(ErrPluginNotAvailable,
			fmt.Sprintf("no uspace host agent is registered for host %s (%s absent): is uspace-agent running here with --host %s?", inv.us.Host, key, inv.us.Host), "")
	}
	if inv.conf.IPAM.Type != "" {
		if err := invoke.DelegateStatus(ctx, inv.conf.IPAM.Type, args.StdinData, nil); err != nil {
			return err
		}
	}
	return nil
}
