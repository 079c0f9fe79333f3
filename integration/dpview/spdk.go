package dpview

import (
	"context"

	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/integration/spdksim"
)

// SPDK reads every bdev and vhost controller of the spdk_tgt at socket.
func SPDK(ctx context.Context, socket string) (spdksim.Snapshot, error) {
	c := spdk.New(socket)
	defer c.Close()
	snap := spdksim.Snapshot{RPCSocket: socket, Bdevs: []spdksim.BdevState{}, Controllers: []spdksim.ControllerState{}}
	bdevs, err := c.BdevGetBdevs(ctx, "", 0)
	if err != nil {
		return snap, err
	}
	for _, b := range bdevs {
		snap.Bdevs = append(snap.Bdevs, spdksim.BdevState{Name: b.Name, UUID: b.UUID, BlockSize: b.BlockSize, NumBlocks: b.NumBlocks})
	}
	ctrls, err := c.VhostGetControllers(ctx, "")
	if err != nil {
		return snap, err
	}
	for _, ct := range ctrls {
		cs := spdksim.ControllerState{Ctrlr: ct.Ctrlr, Type: ct.Type(), Socket: ct.Socket, Cpumask: ct.Cpumask,
			Sessions: len(ct.Sessions)}
		if b := ct.BackendSpecific.Block; b != nil {
			cs.Bdev, cs.Readonly = b.Bdev, b.Readonly
		}
		for _, tg := range ct.BackendSpecific.Scsi {
			for _, l := range tg.Luns {
				cs.Targets = append(cs.Targets, spdksim.TargetState{Num: int(tg.ScsiDevNum), Bdev: l.BdevName})
			}
		}
		snap.Controllers = append(snap.Controllers, cs)
	}
	return snap, nil
}
