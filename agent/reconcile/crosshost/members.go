package crosshost

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// onMemberEvent records the members watch.
func (x *Mesh) onMemberEvent(ev store.Event) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch ev.Type {
	case store.Sync:
		x.seen = make(map[string]store.KV, len(ev.Snapshot))
		for _, kv := range ev.Snapshot {
			x.seen[kv.Key] = kv
		}
		x.once.Do(func() { close(x.synced) })
	case store.Put:
		x.seen[ev.KV.Key] = ev.KV
	case store.Delete:
		delete(x.seen, ev.KV.Key)
	}
	x.applyLocked()
}

// reconcileMember converges one of this host's member keys: put under the
// registration's lease while the host has members of the network, deleted
// otherwise. A host that dies leaves every network when its lease expires.
func (x *Mesh) reconcileMember(ctx context.Context, key string, kv *store.KV) error {
	x.mu.Lock()
	have, published := x.seen[key]
	x.mu.Unlock()
	if kv == nil {
		if !published {
			return nil
		}
		if _, err := x.cfg.Store.Etcd().Delete(ctx, key); err != nil {
			return fmt.Errorf("leave network: delete %s: %w", key, err)
		}
		return nil
	}
	var lease clientv3.LeaseID
	if reg := x.reg.Load(); reg != nil {
		lease = reg.LeaseID()
	}
	if lease == 0 {
		return fmt.Errorf("publish %s: host not registered (no lease to bind it to)", key)
	}
	if published && have.Lease == int64(lease) && bytes.Equal(have.Value, kv.Value) {
		return nil
	}
	if _, err := x.cfg.Store.Etcd().Put(ctx, key, string(kv.Value), clientv3.WithLease(lease)); err != nil {
		return fmt.Errorf("publish %s: %w", key, err)
	}
	return nil
}

// Run starts, in g, the members watch, the re-publication of this host's
// memberships under each new registration lease, and, once every
// membership and every interface intent is known, the worker that
// publishes them: one started earlier would withdraw this host's
// memberships after a restart, and its peers' tunnels with them.
func (x *Mesh) Run(ctx context.Context, g *errgroup.Group, reg *store.Registration) {
	x.reg.Store(reg)
	x.members.Gate(reg.Wait)
	g.Go(func() error {
		return x.cfg.Store.ListWatch(ctx, schema.MembersPrefix(), func(ev store.Event) error {
			if ev.Type != store.Progress {
				x.onMemberEvent(ev)
			}
			return nil
		})
	})
	g.Go(func() error {
		for {
			select {
			case <-reg.Granted():
				x.members.EnqueueAll()
			case <-ctx.Done():
				return nil
			}
		}
	})
	g.Go(func() error {
		for _, c := range []<-chan struct{}{x.synced, x.cfg.Interfaces.Synced()} {
			select {
			case <-c:
			case <-ctx.Done():
				return nil
			}
		}
		x.members.Run(ctx, 1)
		return nil
	})
	x.cfg.Log.Info("joining networks that span hosts", "underlay", x.underlay.String(), "uplink", x.cfg.Uplink)
}

// publishLocked makes the members controller's desired memberships those
// of nets, and queues the published ones no longer wanted, or changed by
// someone else: only this agent speaks for this host.
func (x *Mesh) publishLocked(nets map[string]localNet) {
	own := x.ownMembers(nets)
	for k, v := range own {
		if cur, ok := x.members.Get(k); !ok || !bytes.Equal(cur.Value, v) {
			x.members.Upsert(store.KV{Key: k, Value: v})
		} else if pub, ok := x.seen[k]; !ok || !bytes.Equal(pub.Value, v) {
			x.members.Enqueue(k) // deleted or changed by someone else
		}
	}
	for _, k := range x.members.Keys() {
		if _, ok := own[k]; !ok {
			x.members.Delete(k)
		}
	}
	for k := range x.seen {
		if _, ok := own[k]; !ok && strings.HasPrefix(k, schema.MemberHostPrefix(x.cfg.Host)) {
			x.members.Enqueue(k)
		}
	}
}
