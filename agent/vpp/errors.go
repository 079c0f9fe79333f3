package vpp

import (
	"errors"
	"fmt"
	"strings"

	"go.fd.io/govpp/api"
)

var (
	// ErrNotConnected: there is no usable connection to VPP right now.
	// It is transient (store.Classify): retrying once VPP is back may
	// succeed.
	ErrNotConnected error = transientError("not connected to VPP")
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: an object exists that differs from what was asked, or
	// belongs to someone else, or is still in use.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is invalid before it reaches VPP.
	ErrInvalid = errors.New("invalid argument")
)

// transientError is an error that says it is transient: the one
// classifier (store.Classify, which a driver does not import) asks it.
type transientError string

func (e transientError) Error() string { return string(e) }

// Transient says retrying may cure it.
func (transientError) Transient() bool { return true }

// OpError describes a failed operation on one object.
type OpError struct {
	Op     string // what was attempted, e.g. "create memif"
	Object string // which object, e.g. "socket 3 id 0"
	Kind   error  // ErrNotFound, ErrConflict, ErrInvalid, ErrNotConnected or nil
	Err    error  // the cause, often an api.VPPApiError
}

func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("vpp: ")
	b.WriteString(e.Op)
	if e.Object != "" {
		b.WriteString(" ")
		b.WriteString(e.Object)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	} else if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(e.Kind.Error())
	}
	return b.String()
}

// Unwrap exposes both the kind and the cause to errors.Is / errors.As.
func (e *OpError) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// Retval returns the VPP retval carried by err, if any.
func Retval(err error) (int32, bool) {
	var ve api.VPPApiError
	if errors.As(err, &ve) {
		return int32(ve), true
	}
	return 0, false
}

func retvalIs(err error, rv api.VPPApiError) bool {
	got, ok := Retval(err)
	return ok && got == int32(rv)
}

func opErr(op, object string, kind, err error) error {
	return &OpError{Op: op, Object: object, Kind: kind, Err: err}
}

// IncompatibleError reports a VPP whose binary API lacks, or has other
// CRCs for, messages the driver uses.
type IncompatibleError struct {
	Version      string   // VPP version from show_version ("unknown" if that failed)
	Incompatible []string // "name_crc" the driver needs and VPP does not offer
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("vpp: VPP %s is incompatible: %d message(s) missing or with another CRC: %s",
		e.Version, len(e.Incompatible), strings.Join(e.Incompatible, ", "))
}

// BatchError collects the per-item errors of a batch operation; Errs is
// aligned with the input (nil where the item succeeded).
type BatchError struct {
	Op   string
	Errs []error
}

func (e *BatchError) Error() string {
	n := 0
	var first error
	for _, err := range e.Errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	return fmt.Sprintf("vpp: %s: %d of %d failed, first: %v", e.Op, n, len(e.Errs), first)
}

// Unwrap returns the non-nil item errors.
func (e *BatchError) Unwrap() []error {
	var out []error
	for _, err := range e.Errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}
