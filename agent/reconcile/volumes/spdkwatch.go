package volumes

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// driftInterval is how often, while SPDK is up, the agent compares the
// SPDK objects of its volumes with what they were: SPDK's JSON-RPC has no
// events for a bdev or controller deleted by hand. Two listing calls over
// the local socket; nothing reaches etcd unless something changed.
const driftInterval = 2 * time.Second

// Watch holds an idle connection to SPDK's RPC socket until ctx ends.
// SPDK closes it when it exits, so its loss and return are events, not
// something to poll for: on either, every volume is reconciled again (a
// restarted SPDK has lost its bdevs and controllers; a lost one shows in
// the statuses). While it is up, the drift check runs; Watch returns only
// once it has stopped too.
func (r *Reconciler) Watch(ctx context.Context, socket string) error {
	b := store.NewBackoff(100*time.Millisecond, 5*time.Second)
	var d net.Dialer
	for ctx.Err() == nil {
		conn, err := d.DialContext(ctx, "unix", socket)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(b.NextBackOff()):
			}
			continue
		}
		b.Reset()
		r.whileConnected(ctx, conn)
		if ctx.Err() == nil {
			r.Log.Warn("SPDK connection lost; volumes will be re-applied when it is back", "socket", socket)
			r.EnqueueAll()
		}
	}
	return nil
}

// whileConnected runs the drift check until SPDK closes conn or ctx ends.
func (r *Reconciler) whileConnected(ctx context.Context, conn net.Conn) {
	g, gctx := errgroup.WithContext(ctx)
	dctx, stopDrift := context.WithCancel(gctx)
	// checkDrift queues every volume once it has its first look.
	g.Go(func() error { r.checkDrift(dctx); return nil })
	g.Go(func() error {
		defer stopDrift()
		stop := context.AfterFunc(gctx, func() { conn.Close() })
		defer stop()
		_, _ = io.Copy(io.Discard, conn)
		return nil
	})
	_ = g.Wait()
	conn.Close()
}

// checkDrift re-queues every volume whose SPDK objects changed since the
// last look: a bdev or controller deleted, re-created or changed by hand.
// The reconcile then repairs what the volume owns and reports what it
// adopted (never re-creating that). The first look comes before every
// volume is queued, and a volume seen for the first time is queued too, so
// a change between a reconcile and the look after it is never taken for
// the starting point.
func (r *Reconciler) checkDrift(ctx context.Context) {
	last, err := r.volumeFingerprints(ctx)
	if err != nil {
		r.Log.Debug("SPDK drift check failed", "err", err)
	}
	r.EnqueueAll()
	t := time.NewTicker(driftInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, err := r.volumeFingerprints(ctx)
		if err != nil {
			r.Log.Debug("SPDK drift check failed", "err", err)
			continue
		}
		for key, fp := range cur {
			if old, ok := last[key]; !ok || old != fp {
				r.Log.Info("SPDK objects of a volume changed outside uspace; reconciling", "key", key)
				r.Enqueue(key)
			}
		}
		last = cur
	}
}

// volumeFingerprints describes, per volume intent key, the SPDK objects the
// volume uses as SPDK reports them now.
func (r *Reconciler) volumeFingerprints(ctx context.Context) (map[string]string, error) {
	ctrls, err := r.SPDK.VhostGetControllers(ctx, "")
	if err != nil {
		return nil, err
	}
	bdevs, err := r.SPDK.BdevGetBdevs(ctx, "", 0)
	if err != nil {
		return nil, err
	}
	byCtrl := make(map[string]*spdk.Controller, len(ctrls))
	for i := range ctrls {
		byCtrl[ctrls[i].Ctrlr] = &ctrls[i]
	}
	byBdev := make(map[string]*spdk.Bdev, len(bdevs))
	for i := range bdevs {
		byBdev[bdevs[i].Name] = &bdevs[i]
	}
	out := map[string]string{}
	for _, kv := range r.Desired() {
		v, err := schema.DecodeAs[schema.Volume](kv.Value)
		if err != nil {
			continue
		}
		names := []string{v.Bdev}
		k, err := schema.ParseKey(kv.Key)
		if err != nil {
			continue
		}
		if st := r.status(schema.StatusKey(k)); st != nil {
			names = append(names, st.Bdev)
		}
		var sb strings.Builder
		if c := byCtrl[v.Device]; c != nil {
			// A controller made again under the same name has another
			// socket file: its identity is part of what is compared.
			id, _ := controllerID(c.Socket)
			fmt.Fprintf(&sb, "ctrl %s %s %s;", c.Type(), c.Socket, id)
			if blk := c.BackendSpecific.Block; blk != nil {
				fmt.Fprintf(&sb, "bdev %q ro %t;", blk.Bdev, blk.Readonly)
				names = append(names, blk.Bdev)
			}
			for _, t := range c.BackendSpecific.Scsi {
				for _, l := range t.Luns {
					fmt.Fprintf(&sb, "target %d lun %d %q;", t.ScsiDevNum, l.ID, l.BdevName)
					names = append(names, l.BdevName)
				}
			}
		} else {
			sb.WriteString("no ctrl;")
		}
		slices.Sort(names)
		for _, n := range slices.Compact(names) {
			if n == "" {
				continue
			}
			if b := byBdev[n]; b != nil {
				fmt.Fprintf(&sb, "bdev %s %s %d×%d;", n, b.UUID, b.NumBlocks, b.BlockSize)
			} else {
				fmt.Fprintf(&sb, "no bdev %s;", n)
			}
		}
		out[kv.Key] = sb.String()
	}
	return out, nil
}
