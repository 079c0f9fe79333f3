package endpoint

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// The KV calls go on to etcd unchanged once the view allows them (a read
// narrowed to the container's keys), so their answers and errors are
// etcd's own.

func (e *endpoint) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	s, ok := e.view.read(span{r.Key, r.RangeEnd})
	if !ok {
		return nil, errDenied
	}
	r.Key, r.RangeEnd = s.key, s.end
	resp, err := e.set.kv.Range(ctx, r)
	if err == nil {
		e.seen(resp.Header)
	}
	return resp, err
}

func (e *endpoint) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if r.Lease != 0 || !e.view.write(span{key: r.Key}) {
		return nil, errDenied
	}
	return e.set.kv.Put(ctx, r)
}

func (e *endpoint) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if !e.view.write(span{r.Key, r.RangeEnd}) {
		return nil, errDenied
	}
	return e.set.kv.DeleteRange(ctx, r)
}

func (e *endpoint) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if !e.view.txn(r) {
		return nil, errDenied
	}
	return e.set.kv.Txn(ctx, r)
}

func (e *endpoint) Compact(context.Context, *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	return nil, errDenied
}

// MemberList answers with this endpoint as the cluster's one member: a
// client that syncs its endpoints from the member list stays here, and
// the container learns nothing of etcd's addresses.
func (e *endpoint) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	resp, err := e.set.cluster.MemberList(ctx, r)
	if err != nil {
		return nil, err
	}
	e.seen(resp.Header)
	return &pb.MemberListResponse{Header: resp.Header,
		Members: []*pb.Member{{ID: resp.Header.MemberId, Name: "uspace-endpoint", ClientURLs: []string{URL}}}}, nil
}

func (e *endpoint) MemberAdd(context.Context, *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	return nil, errDenied
}

func (e *endpoint) MemberRemove(context.Context, *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return nil, errDenied
}

func (e *endpoint) MemberUpdate(context.Context, *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	return nil, errDenied
}

func (e *endpoint) MemberPromote(context.Context, *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return nil, errDenied
}
