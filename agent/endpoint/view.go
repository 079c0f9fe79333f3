package endpoint

import (
	"bytes"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/schema"
)

// errDenied is etcd's own refusal, so client/v3 turns it into
// rpctypes.ErrPermissionDenied as it would for an etcd role.
var errDenied = rpctypes.ErrGRPCPermissionDenied

// view is what one container's endpoint lets through: reads of its own
// intents and statuses, writes of its own statuses. It is the
// uspace-containers-<host> role narrowed to one container.
type view struct {
	intents  string // hosts/<h>/containers/<id>/
	statuses string // status/hosts/<h>/containers/<id>/
}

func newView(host, container string) view {
	return view{intents: schema.ContainerPrefix(host, container), statuses: schema.StatusContainerPrefix(host, container)}
}

// span is an etcd key range: end empty is the one key, end "\x00" every
// key from key on.
type span struct{ key, end []byte }

func (s span) single() bool    { return len(s.end) == 0 }
func (s span) toEnd() bool     { return len(s.end) == 1 && s.end[0] == 0 }
func prefixSpan(p string) span { return span{[]byte(p), []byte(clientv3.GetPrefixRangeEnd(p))} }

// within: every key of s lies under prefix p.
func (s span) within(p string) bool {
	if !bytes.HasPrefix(s.key, []byte(p)) {
		return false
	}
	return s.single() || (!s.toEnd() && bytes.Compare(s.end, prefixSpan(p).end) <= 0)
}

// covers: every key under prefix p lies in s.
func (s span) covers(p string) bool {
	ps := prefixSpan(p)
	return !s.single() && bytes.Compare(s.key, ps.key) <= 0 && (s.toEnd() || bytes.Compare(s.end, ps.end) >= 0)
}

// overlaps: some key under prefix p lies in s.
func (s span) overlaps(p string) bool {
	if s.single() {
		return bytes.HasPrefix(s.key, []byte(p))
	}
	ps := prefixSpan(p)
	return bytes.Compare(s.key, ps.end) < 0 && (s.toEnd() || bytes.Compare(s.end, ps.key) > 0)
}

// read returns the range a read of s is served from: s itself when it
// lies in the container's intents or statuses; the container's intents
// when s spans them and none of its statuses (a listing of the host's
// containers, which identity discovery and the agent's probe make, sees
// this container alone); otherwise denied.
func (v view) read(s span) (span, bool) {
	if s.within(v.intents) || s.within(v.statuses) {
		return s, true
	}
	return v.narrow(s)
}

// watch is read without the statuses: the endpoint's watches are fed by
// the host agent's watch of its host's intents.
func (v view) watch(s span) (span, bool) {
	if s.within(v.intents) {
		return s, true
	}
	return v.narrow(s)
}

func (v view) narrow(s span) (span, bool) {
	if s.covers(v.intents) && !s.overlaps(v.statuses) {
		return prefixSpan(v.intents), true
	}
	return span{}, false
}

// write: only the container's own statuses, never bound to a lease (the
// lease would be the host agent's or nobody's).
func (v view) write(s span) bool { return s.within(v.statuses) }

// txn checks every compare and every operation of a transaction, nested
// ones too. Reads inside a transaction are not narrowed: a compare or a
// read that reaches past the container's keys is refused whole.
func (v view) txn(r *pb.TxnRequest) bool {
	for _, c := range r.Compare {
		s := span{c.Key, c.RangeEnd}
		if !s.within(v.intents) && !s.within(v.statuses) {
			return false
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if !v.op(op) {
				return false
			}
		}
	}
	return true
}

func (v view) op(op *pb.RequestOp) bool {
	switch o := op.Request.(type) {
	case *pb.RequestOp_RequestRange:
		s := span{o.RequestRange.Key, o.RequestRange.RangeEnd}
		return s.within(v.intents) || s.within(v.statuses)
	case *pb.RequestOp_RequestPut:
		return o.RequestPut.Lease == 0 && v.write(span{key: o.RequestPut.Key})
	case *pb.RequestOp_RequestDeleteRange:
		return v.write(span{o.RequestDeleteRange.Key, o.RequestDeleteRange.RangeEnd})
	case *pb.RequestOp_RequestTxn:
		return v.txn(o.RequestTxn)
	}
	return false
}
