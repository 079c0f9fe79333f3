package cni

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store/lite"
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
	// Status is the host agent's status of the attachment as the
	// transaction read it: where waiting for the agent starts.
	Status lite.State
	// CtrRev is the container-side intent's mod revision as written or
	// found (carryMTU guards on it).
	CtrRev int64
}

// attachmentState is everything of one attachment in etcd, read at one
// revision.
type attachmentState struct {
	host, ctr, meta *lite.KV
	// others are the other interface names of the same container with a
	// host-side or container-side intent.
	others []string
	// status is the host agent's status of the attachment.
	status lite.State
	// hostIfs is every host-side intent of this host, read only for a
	// socket shared by configuration (its memif id must be unique on it).
	hostIfs []lite.KV
	rev     int64
}

func (a Attachment) keys() (host, ctr, meta string) {
	return a.HostKey().String(), a.ContainerKey().String(), a.MetaKey().String()
}

// attachmentReads are the reads an attachmentState is made of: the
// container's host-side intents, its container-side keys, the status and,
// with a shared socket, every host-side intent of the host. Transactions
// carry them in their Else branch, so a lost guard comes back with the
// state that beat it.
func attachmentReads(att Attachment, shared bool) []lite.Op {
	ops := []lite.Op{
		lite.GetPrefix(schema.ContainerInterfacesPrefix(att.Host, att.ContainerID)),
		lite.GetPrefix(schema.ContainerPrefix(att.Host, att.ContainerID)),
		lite.Get(schema.StatusKey(att.HostKey())),
	}
	if shared {
		ops = append(ops, lite.GetPrefix(schema.InterfacesPrefix(att.Host)))
	}
	return ops
}

// parseAttachment makes the state from the results of attachmentReads,
// read at rev.
func parseAttachment(att Attachment, rs []lite.Result, rev int64) *attachmentState {
	hostKey, ctrKey, metaKey := att.keys()
	s := &attachmentState{rev: rev, status: lite.State{KV: first(rs[2]), Revision: rev}}
	others := map[string]bool{}
	for i, kv := range rs[0].KVs {
		if kv.Key == hostKey {
			s.host = &rs[0].KVs[i]
		} else if k, err := schema.ParseKey(kv.Key); err == nil && k.Kind == schema.KindInterfaceKey {
			others[k.Interface] = true
		}
	}
	for i, kv := range rs[1].KVs {
		switch kv.Key {
		case ctrKey:
			s.ctr = &rs[1].KVs[i]
		case metaKey:
			s.meta = &rs[1].KVs[i]
		default:
			if k, err := schema.ParseKey(kv.Key); err == nil && k.Kind == schema.KindContainerInterfaceKey {
				others[k.Interface] = true
			}
		}
	}
	if len(rs) > 3 {
		s.hostIfs = rs[3].KVs
	}
	s.others = slices.Sorted(maps.Keys(others))
	return s
}

// first is a single-key read's key, nil when it is absent.
func first(r lite.Result) *lite.KV {
	if len(r.KVs) == 0 {
		return nil
	}
	return &r.KVs[0]
}

// readAttachment reads the attachment in one request.
func readAttachment(ctx context.Context, st *lite.Client, att Attachment, shared bool) (*attachmentState, error) {
	r, err := st.Txn(ctx, nil, attachmentReads(att, shared), nil)
	if err != nil {
		return nil, err
	}
	return parseAttachment(att, r.Results, r.Revision), nil
}

func modRev(kv *lite.KV) int64 {
	if kv == nil {
		return 0
	}
	return kv.ModRevision
}

// writeAttempts bounds the transactions of one write or delete: a guard
// fails only when another writer changed the same container (or, with a
// shared socket, the host's interfaces) in between, and each failed
// attempt brings back the state that beat it, so this is reached only
// under heavy churn.
const writeAttempts = 20

// writeIntents writes the three intents in one transaction guarded so that
// (a) the attachment did not exist (or holds exactly these intents: a
// repeated ADD is answered from them), (b) the container's meta is the one
// read, and (c) with a socket shared by configuration, no other interface
// of this host changed since the memif id was chosen. cur is the state
// read before (nil: none was, and the first attempt assumes a container
// etcd knows nothing of, the common case, so an ADD costs one request). A
// lost guard is retried on the state the failed transaction read; a real
// clash returns *errExists.
func writeIntents(ctx context.Context, st *lite.Client, in *Intents, att Attachment, sharedSocket bool, cur *attachmentState) (written, error) {
	if cur == nil {
		cur = &attachmentState{}
	}
	for range writeAttempts {
		w, next, err := writeIntentsOnce(ctx, st, in, att, sharedSocket, cur)
		if next == nil {
			return w, err
		}
		cur = next
	}
	return written{}, types.NewError(types.ErrTryAgainLater,
		fmt.Sprintf("writing intents for container %s interface %s: still conflicting after %d attempts", att.ContainerID, att.IfName, writeAttempts), "")
}

// writeIntentsOnce is one attempt of writeIntents on the state cur. When
// a guard fails it returns the state the transaction read instead.
func writeIntentsOnce(ctx context.Context, st *lite.Client, in *Intents, att Attachment, sharedSocket bool, cur *attachmentState) (written, *attachmentState, error) {
	hostKey, ctrKey, metaKey := att.keys()
	id, err := memifID(in, att, sharedSocket, cur)
	if err != nil {
		return written{}, nil, err
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
		return written{}, nil, configErr([]string{err.Error()})
	}
	ctrVal, err := schema.Encode(in.Container)
	if err != nil {
		return written{}, nil, configErr([]string{err.Error()})
	}
	if cur.host != nil {
		if err := sameAttachment(cur, hostVal, ctrVal, att); err != nil {
			return written{}, nil, err
		}
		return written{Rev: cur.host.ModRevision, Adopted: true, Status: cur.status, CtrRev: cur.ctr.ModRevision}, nil, nil
	}
	meta, err := mergeMeta(cur, in, att)
	if err != nil {
		return written{}, nil, err
	}
	metaVal, err := schema.Encode(meta)
	if err != nil {
		return written{}, nil, configErr([]string{err.Error()})
	}
	cmps, ops := guarded([]op{
		{key: hostKey, value: hostVal, guardRev: 0},
		{key: ctrKey, value: ctrVal, guardRev: modRev(cur.ctr)},
		{key: metaKey, value: metaVal, guardRev: modRev(cur.meta)},
	})
	if sharedSocket {
		cmps = append(cmps, lite.UnchangedSince(schema.InterfacesPrefix(att.Host), cur.rev))
	}
	ops = append(ops, lite.Get(schema.StatusKey(att.HostKey())))
	r, err := st.Txn(ctx, cmps, ops, attachmentReads(att, sharedSocket))
	switch {
	case err != nil:
		// Only a transaction that may have reached etcd needs undoing.
		return written{Unknown: !lite.NotSent(err)}, nil, etcdErr("writing intents", err)
	case !r.Succeeded:
		return written{}, parseAttachment(att, r.Results, r.Revision), nil
	}
	return written{Rev: r.Revision, Status: lite.State{KV: first(r.Results[3]), Revision: r.Revision}, CtrRev: r.Revision}, nil, nil
}

// memifID picks the memif id of the attachment. With a socket file named
// by the config, several interfaces may share it: the id must be unique
// per socket file on this host among the host-side intents cur read (a
// vhost-user socket is never shared). The default socket name is unique
// to the attachment, so its id is 0.
func memifID(in *Intents, att Attachment, sharedSocket bool, cur *attachmentState) (uint32, error) {
	hostKey := att.HostKey().String()
	others := map[string]*schema.HostInterface{}
	if sharedSocket {
		for _, kv := range cur.hostIfs {
			if kv.Key == hostKey {
				continue
			}
			if hi, err := schema.DecodeAs[schema.HostInterface](kv.Value); err == nil {
				others[kv.Key] = hi
			}
		}
	}
	return AllocMemifID(hostKey, in.Host, others)
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

// priorAttachment looks, before IPAM runs, at the attachment as read
// (cur). Absent: nil. Present with exactly what this ADD would write,
// addresses and routes aside when the config has IPAM (they are what the
// earlier ADD's IPAM handed out), and the container side's MTU aside (the
// host agent's, carryMTU): the intents in place, a repeated ADD. Present
// otherwise: *errExists. in is the ADD's intents built without IPAM; it is
// not changed.
func priorAttachment(cur *attachmentState, in *Intents, att Attachment, withIPAM bool) (*Intents, error) {
	if cur.host == nil {
		return nil, nil
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
		return nil, configErr([]string{err.Error()})
	}
	ctrVal, err := schema.Encode(&ctr)
	if err != nil {
		return nil, configErr([]string{err.Error()})
	}
	if err := sameAttachment(cur, hostVal, ctrVal, att); err != nil {
		return nil, err
	}
	return &Intents{Host: &host, Container: &ctr}, nil
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

// deleted is what deleteAttachment did.
type deleted struct {
	// Removed: the host-side intent was there and is gone, at Rev.
	Removed bool
	Rev     int64
	// Agent: a host agent is registered for the host.
	Agent bool
	// Status is the host agent's status of the attachment at Rev.
	Status lite.State
}

// deleteAttachment removes the attachment's host-side and container-side
// intents, and the container meta when no other interface of the
// container remains (else it drops this interface from it), in one
// transaction. The first attempt assumes the container has no other
// interface, its guard, so a DEL costs one request; when it has, the
// state read in the failed transaction tells what to write, guarded on
// what was read, until the guards hold. The transaction also reads
// whether a host agent is registered and the attachment's status, which
// DEL waits on.
func deleteAttachment(ctx context.Context, st *lite.Client, att Attachment) (deleted, error) {
	agentKey, statusKey := schema.AgentKey(att.Host), schema.StatusKey(att.HostKey())
	var cur *attachmentState
	for range writeAttempts {
		cmps, ops := deleteGuards(cur, att)
		if len(ops) == 0 {
			return deleted{}, nil
		}
		n := len(ops)
		r, err := st.Txn(ctx, cmps, append(ops, lite.Get(agentKey), lite.Get(statusKey)), attachmentReads(att, false))
		switch {
		case err != nil:
			return deleted{}, etcdErr("deleting intents", err)
		case r.Succeeded:
			// A transaction sent again (etcd could not answer the first
			// send) finds nothing to delete when the first was applied.
			removed := cur != nil && cur.host != nil || cur == nil && (r.Results[0].Deleted > 0 || r.Resent)
			return deleted{Removed: removed, Rev: r.Revision, Agent: len(r.Results[n].KVs) > 0,
				Status: lite.State{KV: first(r.Results[n+1]), Revision: r.Revision}}, nil
		}
		cur = parseAttachment(att, r.Results, r.Revision)
	}
	return deleted{}, types.NewError(types.ErrTryAgainLater,
		fmt.Sprintf("deleting intents of container %s interface %s: still conflicting after %d attempts", att.ContainerID, att.IfName, writeAttempts), "")
}

// deleteGuards are the comparisons and writes of one attempt: with
// nothing read yet (cur nil), the deletes of all three keys guarded on
// the container having no other interface, on either side; else the
// writes of deleteOps on the state read.
func deleteGuards(cur *attachmentState, att Attachment) ([]lite.Cmp, []lite.Op) {
	if cur != nil {
		return guarded(deleteOps(cur, att))
	}
	hostKey, ctrKey, metaKey := att.keys()
	hostSide := schema.ContainerInterfacesPrefix(att.Host, att.ContainerID)
	ctrSide := schema.ContainerPrefix(att.Host, att.ContainerID) + "interfaces/"
	cmps := []lite.Cmp{
		lite.NoKeyIn(hostSide, hostKey), lite.NoKeyIn(hostKey+"\x00", lite.PrefixEnd(hostSide)),
		lite.NoKeyIn(ctrSide, ctrKey), lite.NoKeyIn(ctrKey+"\x00", lite.PrefixEnd(ctrSide)),
	}
	return cmps, []lite.Op{lite.Delete(hostKey), lite.Delete(ctrKey), lite.Delete(metaKey)}
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

// guarded turns ops into a transaction's comparisons and writes.
func guarded(ops []op) ([]lite.Cmp, []lite.Op) {
	cmps := make([]lite.Cmp, len(ops))
	writes := make([]lite.Op, len(ops))
	for i, o := range ops {
		cmps[i] = lite.ModRevisionIs(o.key, o.guardRev)
		writes[i] = lite.Put(o.key, o.value)
		if o.del {
			writes[i] = lite.Delete(o.key)
		}
	}
	return cmps, writes
}
