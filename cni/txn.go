package cni

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// errExists reports an attachment (container + ifname) that already has
// different intents: a concurrent ADD, or one never deleted. The caller
// must leave it (and its IPAM allocation, which shares the same container
// ID and ifname) alone.
type errExists struct{ msg string }

func (e *errExists) Error() string { return e.msg }

// written is what writeIntents did.
type written struct {
	// Rev is the revision the agent must reach: that of our write, or of
	// the identical intents already there.
	Rev int64
	// Adopted is true when identical intents were already there (a
	// repeated ADD): nothing was written.
	Adopted bool
	// Unknown is true when the transaction was sent but its outcome is
	// unknown (etcd went away): the intents may or may not be there.
	Unknown bool
}

// attachmentState is everything of one attachment in etcd.
type attachmentState struct {
	host, ctr, meta *store.KV
	// others are the other interface names of the same container with a
	// host-side or container-side intent.
	others []string
}

func (a Attachment) keys() (host, ctr, meta string) {
	return a.HostKey().String(), a.ContainerKey().String(), a.MetaKey().String()
}

// readAttachment reads the attachment's keys and which other interfaces
// the container has.
func readAttachment(ctx context.Context, st *store.Client, att Attachment) (*attachmentState, error) {
	hostKey, ctrKey, metaKey := att.keys()
	s := &attachmentState{}
	others := map[string]bool{}
	hostSide, _, err := st.List(ctx, schema.ContainerInterfacesPrefix(att.Host, att.ContainerID))
	if err != nil {
		return nil, err
	}
	for i, kv := range hostSide {
		if kv.Key == hostKey {
			s.host = &hostSide[i]
		} else if k, err := schema.ParseKey(kv.Key); err == nil && k.Kind == schema.KindInterfaceKey {
			others[k.Interface] = true
		}
	}
	ctrSide, _, err := st.List(ctx, schema.ContainerPrefix(att.Host, att.ContainerID))
	if err != nil {
		return nil, err
	}
	for i, kv := range ctrSide {
		switch kv.Key {
		case ctrKey:
			s.ctr = &ctrSide[i]
		case metaKey:
			s.meta = &ctrSide[i]
		default:
			if k, err := schema.ParseKey(kv.Key); err == nil && k.Kind == schema.KindContainerInterfaceKey {
				others[k.Interface] = true
			}
		}
	}
	for n := range others {
		s.others = append(s.others, n)
	}
	slices.Sort(s.others)
	return s, nil
}

func modRev(kv *store.KV) int64 {
	if kv == nil {
		return 0
	}
	return kv.ModRevision
}

// writeIntents writes the three intents in one transaction guarded so that
// (a) the attachment did not exist (or holds exactly these intents: a
// repeated ADD is answered from them), (b) the container's meta is the one
// read, and (c) with a socket shared by configuration, no other interface
// of this host changed since the memif id was chosen. A lost race is
// retried from a fresh read (store.RetryOnConflict); a real clash returns
// *errExists.
func writeIntents(ctx context.Context, st *store.Client, in *Intents, att Attachment, sharedSocket bool) (written, error) {
	var w written
	err := store.RetryOnConflict(ctx, func() error {
		var err error
		w, err = writeIntentsOnce(ctx, st, in, att, sharedSocket)
		return err
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return written{}, types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("writing intents for container %s interface %s: still conflicting after %d attempts", att.ContainerID, att.IfName, store.ConflictAttempts), "")
	case err != nil && err == ctx.Err():
		// ctx ended during the pause between two attempts.
		return written{}, etcdErr("writing intents", err)
	}
	return w, err
}

// writeIntentsOnce is one attempt of writeIntents; a lost guard is an
// error wrapping store.ErrConflict.
func writeIntentsOnce(ctx context.Context, st *store.Client, in *Intents, att Attachment, sharedSocket bool) (written, error) {
	hostKey, ctrKey, metaKey := att.keys()
	id, listRev, err := memifID(ctx, st, in, att, sharedSocket)
	if err != nil {
		return written{}, err
	}
	cur, err := readAttachment(ctx, st, att)
	if err != nil {
		return written{}, etcdErr("reading the attachment", err)
	}
	if cur.host != nil {
		// Keep the id the existing intent holds: comparing is then
		// about the settings, not about which id is free now.
		if old, err := schema.DecodeAs[schema.HostInterface](cur.host.Value); err == nil && old.Memif != nil {
			id = old.Memif.ID
		}
		keepCarriedMTU(in.Container, cur.ctr)
	}
	if in.Host.Memif != nil {
		in.Host.Memif.ID, in.Container.Memif.ID = id, id
	}
	hostVal, err := schema.Encode(in.Host)
	if err != nil {
		return written{}, configErr([]string{err.Error()})
	}
	ctrVal, err := schema.Encode(in.Container)
	if err != nil {
		return written{}, configErr([]string{err.Error()})
	}
	if cur.host != nil {
		if err := sameAttachment(cur, hostVal, ctrVal, att); err != nil {
			return written{}, err
		}
		return written{Rev: cur.host.ModRevision, Adopted: true}, nil
	}
	meta, err := mergeMeta(cur, in, att)
	if err != nil {
		return written{}, err
	}
	metaVal, err := schema.Encode(meta)
	if err != nil {
		return written{}, configErr([]string{err.Error()})
	}
	ops := []op{
		{key: hostKey, value: hostVal, guardRev: 0},
		{key: ctrKey, value: ctrVal, guardRev: modRev(cur.ctr)},
		{key: metaKey, value: metaVal, guardRev: modRev(cur.meta)},
	}
	guardPrefix := ""
	if sharedSocket {
		guardPrefix = schema.InterfacesPrefix(att.Host)
	}
	rev, err := apply(ctx, st, ops, guardPrefix, listRev)
	switch {
	case err == nil:
		return written{Rev: rev}, nil
	case errors.Is(err, store.ErrConflict):
		return written{}, err
	}
	return written{Unknown: true}, etcdErr("writing intents", err)
}

// memifID picks the memif id of the attachment. With a socket file named
// by the config, several interfaces may share it: it reads every host
// intent of this host (the id must be unique per socket file on this host;
// a vhost-user socket is never shared) and returns the revision of that
// read for the prefix guard. The default socket name is unique to the
// attachment, so its id is 0 and nothing else needs reading.
func memifID(ctx context.Context, st *store.Client, in *Intents, att Attachment, sharedSocket bool) (uint32, int64, error) {
	hostKey := att.HostKey().String()
	others := map[string]*schema.HostInterface{}
	var listRev int64
	if sharedSocket {
		all, rev, err := st.List(ctx, schema.InterfacesPrefix(att.Host))
		if err != nil {
			return 0, 0, etcdErr("listing this host's interfaces", err)
		}
		listRev = rev
		for _, kv := range all {
			if kv.Key == hostKey {
				continue
			}
			if hi, err := schema.DecodeAs[schema.HostInterface](kv.Value); err == nil {
				others[kv.Key] = hi
			}
		}
	}
	id, err := AllocMemifID(hostKey, in.Host, others)
	return id, listRev, err
}

// mergeMeta is the container meta to write: the ADD's, or the one in etcd
// with this interface (and its network) added.
func mergeMeta(cur *attachmentState, in *Intents, att Attachment) (*schema.ContainerMeta, error) {
	meta := *in.Meta
	if cur.meta == nil {
		return &meta, nil
	}
	old, err := schema.DecodeAs[schema.ContainerMeta](cur.meta.Value)
	if err != nil {
		return &meta, nil
	}
	if old.Netns != "" && att.Netns != "" && old.Netns != att.Netns && len(cur.others) > 0 {
		return nil, &errExists{fmt.Sprintf("container %s is registered with netns %s (interfaces %v), not %s: DEL it first",
			att.ContainerID, old.Netns, cur.others, att.Netns)}
	}
	meta = *old
	meta.Interfaces = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(cur.others), att.IfName))))
	if meta.Netns == "" || len(cur.others) == 0 {
		meta.Netns = att.Netns
	}
	fillPod(&meta, in.Meta)
	meta.Networks = networksOf(old.Networks, meta.Interfaces)
	maps.Copy(meta.Networks, in.Meta.Networks)
	return &meta, nil
}

// priorAttachment looks, before IPAM runs, for the attachment in etcd.
// Absent: nil. Present with exactly what this ADD would write, addresses
// and routes aside when the config has IPAM (they are what the earlier
// ADD's IPAM handed out), and the container side's MTU aside (the host
// agent's, carryMTU): the intents in place and the revision of the
// host-side one, a repeated ADD. Present otherwise: *errExists. in is the
// ADD's intents built without IPAM; it is not changed.
func priorAttachment(ctx context.Context, st *store.Client, in *Intents, att Attachment, withIPAM bool) (*Intents, int64, error) {
	cur, err := readAttachment(ctx, st, att)
	if err != nil {
		return nil, 0, etcdErr("reading the attachment", err)
	}
	if cur.host == nil {
		return nil, 0, nil
	}
	host, ctr := *in.Host, *in.Container
	if h, err := schema.DecodeAs[schema.HostInterface](cur.host.Value); err == nil && h.Memif != nil && host.Memif != nil {
		// The memif id is the one the earlier ADD allocated.
		hm, cm := *host.Memif, *ctr.Memif
		hm.ID, cm.ID = h.Memif.ID, h.Memif.ID
		host.Memif, ctr.Memif = &hm, &cm
	}
	if cur.ctr != nil && withIPAM {
		if c, err := schema.DecodeAs[schema.ContainerInterface](cur.ctr.Value); err == nil {
			ctr.IPs, ctr.Routes = c.IPs, c.Routes
		}
	}
	keepCarriedMTU(&ctr, cur.ctr)
	hostVal, err := schema.Encode(&host)
	if err != nil {
		return nil, 0, configErr([]string{err.Error()})
	}
	ctrVal, err := schema.Encode(&ctr)
	if err != nil {
		return nil, 0, configErr([]string{err.Error()})
	}
	if err := sameAttachment(cur, hostVal, ctrVal, att); err != nil {
		return nil, 0, err
	}
	return &Intents{Host: &host, Container: &ctr}, cur.host.ModRevision, nil
}

// sameAttachment accepts existing intents identical to ours.
func sameAttachment(cur *attachmentState, hostVal, ctrVal []byte, att Attachment) error {
	what := fmt.Sprintf("container %s interface %s already exists in etcd with different", att.ContainerID, att.IfName)
	switch {
	case !bytes.Equal(cur.host.Value, hostVal):
		return &errExists{fmt.Sprintf("%s host-side settings (a concurrent ADD, or an attachment never deleted: DEL it first)", what)}
	case cur.ctr == nil || !bytes.Equal(cur.ctr.Value, ctrVal):
		return &errExists{fmt.Sprintf("%s container-side settings or addresses (a concurrent ADD, or an attachment never deleted: DEL it first)", what)}
	case cur.meta == nil:
		return &errExists{fmt.Sprintf("container %s interface %s exists in etcd without its container meta: DEL it first", att.ContainerID, att.IfName)}
	}
	m, err := schema.DecodeAs[schema.ContainerMeta](cur.meta.Value)
	if err != nil || !slices.Contains(m.Interfaces, att.IfName) || (att.Netns != "" && m.Netns != att.Netns) {
		return &errExists{fmt.Sprintf("%s container meta (netns or interfaces): DEL it first", what)}
	}
	return nil
}

// networksOf keeps the entries of networks whose interface is in ifnames.
func networksOf(networks map[string]string, ifnames []string) map[string]string {
	out := make(map[string]string, len(ifnames))
	for _, n := range ifnames {
		if net, ok := networks[n]; ok {
			out[n] = net
		}
	}
	return out
}

func fillPod(dst, src *schema.ContainerMeta) {
	if dst.PodNamespace == "" {
		dst.PodNamespace = src.PodNamespace
	}
	if dst.PodName == "" {
		dst.PodName = src.PodName
	}
	if dst.PodUID == "" {
		dst.PodUID = src.PodUID
	}
	if dst.Network == "" {
		dst.Network = src.Network
	}
}

// deleteAttachment removes the attachment's host-side and container-side
// intents, and the container meta when no other interface of the
// container remains (else it drops this interface from it), in one
// transaction guarded on what was read, retried from a fresh read when it
// loses (store.RetryOnConflict). It returns the host intent that was
// deleted (nil if there was none) and the revision.
func deleteAttachment(ctx context.Context, st *store.Client, att Attachment) (*store.KV, int64, error) {
	var (
		removed *store.KV
		rev     int64
	)
	err := store.RetryOnConflict(ctx, func() error {
		cur, err := readAttachment(ctx, st, att)
		if err != nil {
			return etcdErr("reading the attachment", err)
		}
		ops := deleteOps(cur, att)
		if len(ops) == 0 {
			removed, rev = nil, 0
			return nil
		}
		removed = cur.host
		rev, err = apply(ctx, st, ops, "", 0)
		return err
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return nil, 0, types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("deleting intents of container %s interface %s: still conflicting after %d attempts", att.ContainerID, att.IfName, store.ConflictAttempts), "")
	case err != nil:
		return nil, 0, etcdErr("deleting intents", err)
	}
	return removed, rev, nil
}

// deleteOps are the guarded writes that remove the attachment as read.
func deleteOps(cur *attachmentState, att Attachment) []op {
	hostKey, ctrKey, metaKey := att.keys()
	var ops []op
	if cur.host != nil {
		ops = append(ops, op{key: hostKey, del: true, guardRev: cur.host.ModRevision})
	}
	if cur.ctr != nil {
		ops = append(ops, op{key: ctrKey, del: true, guardRev: cur.ctr.ModRevision})
	}
	if cur.meta != nil {
		if len(cur.others) == 0 {
			ops = append(ops, op{key: metaKey, del: true, guardRev: cur.meta.ModRevision})
		} else if m, err := schema.DecodeAs[schema.ContainerMeta](cur.meta.Value); err == nil &&
			(!slices.Equal(m.Interfaces, cur.others) || len(m.Networks) != len(networksOf(m.Networks, cur.others))) {
			m.Interfaces = cur.others
			m.Networks = networksOf(m.Networks, cur.others)
			if val, err := schema.Encode(m); err == nil {
				ops = append(ops, op{key: metaKey, value: val, guardRev: cur.meta.ModRevision})
			}
		}
	}
	return ops
}

// op is one write of a guarded transaction: guardRev is the mod revision
// the key must have (0: must not exist).
type op struct {
	key      string
	value    []byte
	del      bool
	guardRev int64
}

// apply commits ops in one transaction. With guardPrefix set it also
// requires that no key under that prefix was created or changed after
// sinceRev.
func apply(ctx context.Context, st *store.Client, ops []op, guardPrefix string, sinceRev int64) (int64, error) {
	sops := make([]store.Op, len(ops))
	for i, o := range ops {
		sops[i] = store.Op{Key: o.key, Value: o.value, Delete: o.del, Guard: store.ModRevision(o.guardRev)}
	}
	if guardPrefix == "" {
		return st.Apply(ctx, sops...)
	}
	return st.ApplyIfUnchanged(ctx, store.PrefixGuard{Prefix: guardPrefix, Since: sinceRev}, sops...)
}
