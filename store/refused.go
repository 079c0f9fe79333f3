package store

import (
	"errors"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// IsRefusedRequest reports etcd (or the client, before sending) refusing a
// request for what it holds, a value over the request limit say: sent
// again as it is it cannot succeed, unlike a request that failed because
// etcd was away, out of space or busy, which every request meets alike.
func IsRefusedRequest(err error) bool {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.InvalidArgument
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s, ok := status.FromError(e); ok {
			return s.Code() == codes.InvalidArgument ||
				s.Code() == codes.ResourceExhausted && strings.Contains(s.Message(), "larger than max")
		}
	}
	return false
}

// deniedWatchReasons are the cancel reasons with which etcd (and the host
// agent's container endpoint) refuse a watch for its identity.
var deniedWatchReasons = []string{
	rpctypes.ErrGRPCPermissionDenied.Error(),
	rpctypes.ErrGRPCAuthFailed.Error(),
	rpctypes.ErrGRPCUserEmpty.Error(),
	rpctypes.ErrGRPCUserNotFound.Error(),
}

// isDeniedWatch reports a watch etcd refused to this identity. etcd
// cancels it with a reason that is a gRPC error's whole text, which
// client/v3 cannot map to its EtcdError: a watch refused as it is created
// comes back as an error of that plain text, one cancelled later as a
// FailedPrecondition status carrying it.
func isDeniedWatch(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if slices.Contains(deniedWatchReasons, e.Error()) {
			return true
		}
		if s, ok := e.(interface{ GRPCStatus() *status.Status }); ok {
			return s.GRPCStatus().Code() == codes.FailedPrecondition && slices.Contains(deniedWatchReasons, s.GRPCStatus().Message())
		}
	}
	return false
}
