package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/cenkalti/backoff/v4"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Class is what waiting can do about an error. It is the one question every
// caller asks before it retries, answers "try again later" or gives up: the
// store's own loops, the CNI plugin, the volume driver and the agents'
// statuses (their `retrying`).
type Class int

const (
	// Unclassified: nothing in the error says. A loop that must not die of
	// a blip (a watch, a registration) retries it; a caller that answers a
	// user or an intent (CNI, a status) reports it as final.
	Unclassified Class = iota
	// Transient: the other side is unreachable, restarting or too slow to
	// answer, or the connection broke under the call; the same request
	// may succeed later.
	Transient
	// Terminal: the same request can never succeed from this client: etcd
	// refuses its identity, or the client was closed.
	Terminal
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Terminal:
		return "terminal"
	}
	return "unclassified"
}

// ErrClosed marks an error met because this process closed its etcd
// client (see Client.retryable): nothing will succeed on it again.
var ErrClosed = errors.New("etcd client closed")

// Classify says which Class err is. Terminal wins over Transient: a call
// cut off by a closed client also reports a cancellation. Besides etcd's
// and gRPC's errors and the standard library's deadline, cancellation and
// broken-connection errors, it recognises any error in err's tree that
// says so itself with a method `Transient() bool`: how the dataplane
// drivers mark "VPP not connected" and "SPDK unreachable" without this
// package knowing them; likewise one with a method `Denied() bool` is
// Terminal when it says so: store/lite's refusals of an identity.
func Classify(err error) Class {
	switch {
	case err == nil:
		return Unclassified
	case IsDenied(err) || errors.Is(err, ErrClosed):
		return Terminal
	case transient(err):
		return Transient
	}
	return Unclassified
}

// transientError is how an error outside the store says it is transient.
type transientError interface{ Transient() bool }

func transient(err error) bool {
	for _, target := range []error{
		context.DeadlineExceeded, context.Canceled,
		io.EOF, io.ErrUnexpectedEOF, net.ErrClosed,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	var (
		te transientError
		ne *net.OpError
		ee rpctypes.EtcdError
	)
	switch {
	case errors.As(err, &te):
		return te.Transient()
	case errors.As(err, &ne):
		return true
	case errors.As(err, &ee):
		// The client turns etcd's known gRPC errors into EtcdError: no
		// leader, leader changed, request timed out, server stopped.
		return transientCode(ee.Code())
	}
	if s, ok := status.FromError(err); ok {
		return transientCode(s.Code())
	}
	return false
}

func transientCode(c codes.Code) bool {
	return c == codes.Unavailable || c == codes.DeadlineExceeded || c == codes.Canceled
}

// deniedError is how an error outside the store says etcd refused its
// identity.
type deniedError interface{ Denied() bool }

// IsDenied reports the Terminal errors that name etcd refusing this
// identity: permission denied, authentication failed (a deleted user, a
// changed password), no user given; from client/v3 or from an error that
// says so itself (store/lite's).
func IsDenied(err error) bool {
	var de deniedError
	if errors.As(err, &de) && de.Denied() {
		return true
	}
	return errors.Is(err, rpctypes.ErrPermissionDenied) ||
		errors.Is(err, rpctypes.ErrAuthFailed) ||
		errors.Is(err, rpctypes.ErrUserEmpty) ||
		errors.Is(err, rpctypes.ErrUserNotFound) ||
		errors.Is(err, rpctypes.ErrGRPCPermissionDenied) ||
		errors.Is(err, rpctypes.ErrGRPCAuthFailed) ||
		isDeniedWatch(err)
}

// retryable is how the store's own loops (ListWatch, Register) use
// Classify: Terminal ends them (backoff.Permanent), anything else is
// retried. It adds what only the client knows: that it was closed.
func (c *Client) retryable(err error) error {
	if c.etcd.Ctx().Err() != nil && !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("%w (%w)", err, ErrClosed)
	}
	if Classify(err) == Terminal {
		return backoff.Permanent(err)
	}
	return err
}
