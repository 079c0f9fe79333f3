package cni

import (
	"context"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// carryMTU gives the container side the MTU the host agent set on the host
// side (status.MTU): only the host agent knows the uplink that a network
// spanning hosts is tunnelled over, and frames the container sends above
// it would be lost between hosts. When the container-side intent differs,
// one guarded update sets it, for the container agent to apply; ctr, this
// ADD's copy of that intent, follows, so the result says the same.
func carryMTU(ctx context.Context, st *store.Client, att Attachment, ctr *schema.ContainerInterface, status *schema.InterfaceStatus) error {
	if status == nil || ctr.MTU == status.MTU {
		return nil
	}
	key := att.ContainerKey().String()
	_, err := st.Update(ctx, key, func(old *store.KV) ([]byte, error) {
		if old == nil {
			return nil, types.NewError(types.ErrInternal, fmt.Sprintf("container-side intent %s went while the host agent applied the host side (a DEL?)", key), "")
		}
		c, err := schema.DecodeAs[schema.ContainerInterface](old.Value)
		if err != nil {
			return nil, types.NewError(types.ErrInternal, fmt.Sprintf("container-side intent %s", key), err.Error())
		}
		c.MTU = status.MTU
		return schema.Encode(c)
	})
	if err != nil {
		return etcdErr(fmt.Sprintf("setting MTU %d on the container side", status.MTU), err)
	}
	ctr.MTU = status.MTU
	return nil
}

// keepCarriedMTU copies into ctr, a container-side intent built from the
// config, the MTU an earlier ADD carried into the one in etcd (cur), so
// that comparing the two is about what the config decides.
func keepCarriedMTU(ctr *schema.ContainerInterface, cur *store.KV) {
	if cur == nil {
		return
	}
	if c, err := schema.DecodeAs[schema.ContainerInterface](cur.Value); err == nil {
		ctr.MTU = c.MTU
	}
}
