package lite

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
)

// gRPC status codes etcd answers with (google.golang.org/grpc/codes).
const (
	codeCanceled         = 1
	codeUnknown          = 2
	codeDeadlineExceeded = 4
	codePermissionDenied = 7
	codeUnavailable      = 14
)

// Error is etcd's refusal of a request: its gRPC status code and its
// message, which is etcd's own ("etcdserver: permission denied").
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Transient says whether etcd's refusal is one that asking again later may
// cure (unavailable, deadline exceeded, cancelled): with transportError's,
// how lite's errors answer store.Classify, the code base's one classifier,
// without lite importing it.
func (e *Error) Transient() bool {
	return e.Code == codeUnavailable || e.Code == codeDeadlineExceeded || e.Code == codeCanceled
}

// etcd's messages about identities (api/v3/v3rpc/rpctypes), told apart by
// message where they share a code with other errors.
const (
	msgPermissionDenied = "etcdserver: permission denied"
	msgAuthFailed       = "etcdserver: authentication failed, invalid user ID or password"
	msgUserEmpty        = "etcdserver: user name is empty"
	msgUserNotFound     = "etcdserver: user name not found"
	msgBadToken         = "etcdserver: invalid auth token"
	msgOldAuthRev       = "etcdserver: revision of auth store is old"
	msgAuthNotEnabled   = "etcdserver: authentication is not enabled"
)

// grpcStatus is the error a response carries in its grpc-status (a
// trailer, or a header when etcd answered with headers only), nil for OK.
func grpcStatus(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd answered HTTP %s, not gRPC", resp.Status)
	}
	code, msg := resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	if code == "" {
		code, msg = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	if code == "" {
		return errors.New("etcd's answer carries no grpc-status")
	}
	n, err := strconv.Atoi(code)
	if err != nil {
		return fmt.Errorf("etcd's answer carries grpc-status %q", code)
	}
	if n == 0 {
		return nil
	}
	if m, err := url.PathUnescape(msg); err == nil {
		msg = m
	}
	return &Error{Code: n, Message: msg}
}

// transportError is a request that failed below gRPC: no connection, or
// a connection lost. sent says whether the request may have reached etcd.
type transportError struct {
	err  error
	sent bool
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// Transient: a lost or refused connection may be there again later.
func (e *transportError) Transient() bool { return true }

// transportErr classifies an error of net/http: a failed dial or TLS
// handshake sent nothing. A TLS alert from etcd (a "remote error") is its
// refusal of the handshake, which with TLS 1.3 reaches the client only
// after it wrote its request: etcd never served it either.
func transportErr(url string, err error) error {
	var (
		op      *net.OpError
		verify  *tls.CertificateVerificationError
		record  tls.RecordHeaderError
		unknown x509.UnknownAuthorityError
	)
	refused := errors.As(err, &op) && (op.Op == "dial" || op.Op == "remote error")
	sent := !refused && !errors.As(err, &verify) && !errors.As(err, &record) && !errors.As(err, &unknown)
	return &transportError{err: fmt.Errorf("etcd at %s: %w", url, err), sent: sent}
}

// NotSent reports a request that never reached etcd (every endpoint
// refused the connection, say): it certainly changed nothing.
func NotSent(err error) bool {
	var te *transportError
	return errors.As(err, &te) && !te.sent
}

// IsUnavailable reports an error that says etcd could not be reached or
// did not answer in time: worth trying again later, unlike a refusal
// (IsDenied) or a failed comparison. It asks what store.Classify asks of
// an error (a `Transient() bool` method), so both say Transient of the
// same errors.
func IsUnavailable(err error) bool {
	var t interface{ Transient() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.As(err, &t) && t.Transient()
}

// IsDenied reports an error that retrying cannot cure because etcd refuses
// this identity: permission denied, authentication failed (a deleted user,
// a changed password), no user given.
func IsDenied(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Denied()
}

// Denied says whether etcd refused this identity (see IsDenied): how lite's
// errors answer store.Classify as Terminal, as Transient answers it
// Transient.
func (e *Error) Denied() bool {
	switch e.Message {
	case msgAuthFailed, msgUserEmpty, msgUserNotFound:
		return true
	}
	return e.Code == codePermissionDenied
}

// staleToken reports etcd refusing a token it issued: expired, or issued
// before its auth store changed. Logging in again gets a fresh one.
func staleToken(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Message == msgBadToken || e.Message == msgOldAuthRev)
}
