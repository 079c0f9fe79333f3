package host

import (
	"context"
	"io"
	"net"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// watchSPDK holds an idle connection to SPDK's RPC socket. SPDK closes it
// when it exits, so its loss and return are events, not something to poll
// for: on either, every volume is reconciled again (a restarted SPDK has
// lost its bdevs and controllers; a lost one shows in the statuses).
func (a *Agent) watchSPDK(ctx context.Context) {
	backoff := func() wait.Backoff {
		return wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: 5 * time.Second}
	}
	b := backoff()
	var d net.Dialer
	for ctx.Err() == nil {
		conn, err := d.DialContext(ctx, "unix", a.cfg.SPDKSocket)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(b.Step()):
			}
			continue
		}
		b = backoff()
		a.volumes.EnqueueAll()
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		_, _ = io.Copy(io.Discard, conn)
		stop()
		conn.Close()
		if ctx.Err() == nil {
			a.log.Warn("SPDK connection lost; volumes will be re-applied when it is back", "socket", a.cfg.SPDKSocket)
			a.volumes.EnqueueAll()
		}
	}
}
