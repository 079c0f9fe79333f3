package store

import (
	"errors"
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
