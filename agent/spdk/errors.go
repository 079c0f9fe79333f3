package spdk

import (
	"errors"
	"fmt"
)

// RPCError is an error object returned by SPDK. Code is whatever SPDK put
// there, which is not uniform: bdev RPCs use the raw negative errno (-17,
// -19, -22), vhost RPCs use -32602 with the errno text as message, and
// vhost_get_controllers uses -32603. Use IsNotFound, IsExists, IsBusy and
// IsInvalid rather than comparing codes.
type RPCError struct {
	Code    int
	Message string
	// Method is the JSON-RPC method that failed.
	Method string
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("spdk %s: %s (code %d)", e.Method, e.Message, e.Code)
}

// Errno texts SPDK uses as messages (spdk_strerror).
const (
	msgNoDevice = "No such device"
	msgExists   = "File exists"
	msgBusy     = "Device or resource busy"
	msgInvalid  = "Invalid argument"
)

func asRPC(err error) (*RPCError, bool) {
	var e *RPCError
	ok := errors.As(err, &e)
	return e, ok
}

// IsNotFound reports whether err is SPDK saying the named object does not
// exist: -19 (bdev RPCs), or -32602/-32603 "No such device" (vhost RPCs).
func IsNotFound(err error) bool {
	e, ok := asRPC(err)
	if !ok {
		return false
	}
	return e.Code == -19 || ((e.Code == -32602 || e.Code == -32603) && e.Message == msgNoDevice)
}

// IsExists reports whether err is SPDK saying the object already exists:
// -17 (bdev RPCs) or -32602 "File exists" (vhost RPCs).
func IsExists(err error) bool {
	e, ok := asRPC(err)
	if !ok {
		return false
	}
	return e.Code == -17 || (e.Code == -32602 && e.Message == msgExists)
}

// IsBusy reports whether err is SPDK saying the object is in use: -16, or
// -32602 "Device or resource busy" (e.g. deleting a SCSI controller that
// still has targets).
func IsBusy(err error) bool {
	e, ok := asRPC(err)
	if !ok {
		return false
	}
	return e.Code == -16 || (e.Code == -32602 && e.Message == msgBusy)
}

// IsInvalid reports whether err is SPDK rejecting the arguments: -22, or
// -32602 "Invalid argument".
func IsInvalid(err error) bool {
	e, ok := asRPC(err)
	if !ok {
		return false
	}
	return e.Code == -22 || (e.Code == -32602 && e.Message == msgInvalid)
}

// ErrConnection marks failures to reach SPDK or to get an answer over the
// socket (as opposed to an error SPDK sent back). After one, the next call
// dials a new connection and Generation increases. It is transient
// (store.Classify): retrying once SPDK answers may succeed.
var ErrConnection error = transientError("spdk: connection failed")

// transientError is an error that says it is transient: the one
// classifier (store.Classify, which a driver does not import) asks it.
type transientError string

func (e transientError) Error() string { return string(e) }

// Transient says retrying may cure it.
func (transientError) Transient() bool { return true }

// ErrProtocol marks a reply that does not follow JSON-RPC 2.0.
var ErrProtocol = errors.New("spdk: protocol error")
