package cni

import (
	"context"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store/lite"
)

// carryMTU gives the container side the MTU the host agent set on the host
// side (status.MTU): only the host agent knows the uplink that a network
// spanning hosts is tunnelled over, and frames the container sends above
// it would be lost between hosts. When the container-side intent differs,
// one transaction sets it, for the container agent to apply, guarded on
// the intent being ctr at mod revision ctrRev (what this ADD wrote or
// read); a lost guard brings back the intent as it is, and the next
// attempt changes only its MTU. ctr, this ADD's copy, follows, so the
// result says the same.
func carryMTU(ctx context.Context, st *lite.Client, att Attachment, ctr *schema.ContainerInterface, ctrRev int64, status *schema.InterfaceStatus) error {
	if status == nil || ctr.MTU == status.MTU {
		return nil
	}
	key := att.ContainerKey().String()
	cur, rev := *ctr, ctrRev
	for range writeAttempts {
		cur.MTU = status.MTU
		val, err := schema.Encode(&cur)
		if err != nil {
			return types.NewError(types.ErrInternal, fmt.Sprintf("container-side intent %s with MTU %d", key, status.MTU), err.Error())
		}
		r, err := st.Txn(ctx, []lite.Cmp{lite.ModRevisionIs(key, rev)}, []lite.Op{lite.Put(key, val)}, []lite.Op{lite.Get(key)})
		if err != nil {
			return etcdErr(fmt.Sprintf("setting MTU %d on the container side", status.MTU), err)
		}
		if r.Succeeded {
			ctr.MTU = status.MTU
			return nil
		}
		kv := first(r.Results[0])
		if kv == nil {
			return types.NewError(types.ErrInternal, fmt.Sprintf("container-side intent %s went while the host agent applied the host side (a DEL?)", key), "")
		}
		c, err := schema.DecodeAs[schema.ContainerInterface](kv.Value)
		if err != nil {
			return types.NewError(types.ErrInternal, fmt.Sprintf("container-side intent %s", key), err.Error())
		}
		if c.MTU == status.MTU {
			ctr.MTU = status.MTU
			return nil
		}
		cur, rev = *c, kv.ModRevision
	}
	return types.NewError(types.ErrTryAgainLater,
		fmt.Sprintf("setting MTU %d on the container side %s: still conflicting after %d attempts", status.MTU, key, writeAttempts), "")
}

// keepCarriedMTU copies into ctr, a container-side intent built from the
// config, the MTU an earlier ADD carried into the one in etcd (cur), so
// that comparing the two is about what the config decides.
func keepCarriedMTU(ctr *schema.ContainerInterface, cur *lite.KV) {
	if cur == nil {
		return
	}
	if c, err := schema.DecodeAs[schema.ContainerInterface](cur.Value); err == nil {
		ctr.MTU = c.MTU
	}
}
