package lite

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Protocol buffers' wire format, as much of it as etcd's messages here
// use: varints (int64, uint64, bool, enums) and length-delimited fields
// (bytes, strings, nested messages). Fixed-width fields are skipped when
// decoding; etcd's KV, Watch and Auth messages have none.
const (
	wireVarint = 0
	wire64     = 1
	wireBytes  = 2
	wire32     = 5
)

// pb appends fields to a message. Zero values are left out, as proto3
// leaves them out.
type pb []byte

func (m pb) tag(field, wire int) pb {
	return binary.AppendUvarint(m, uint64(field)<<3|uint64(wire))
}

func (m pb) uint(field int, v uint64) pb {
	if v == 0 {
		return m
	}
	return binary.AppendUvarint(m.tag(field, wireVarint), v)
}

// int encodes an int64 as protobuf does: negative values in ten bytes.
func (m pb) int(field int, v int64) pb { return m.uint(field, uint64(v)) }

func (m pb) bool(field int, v bool) pb {
	if !v {
		return m
	}
	return m.uint(field, 1)
}

func (m pb) bytes(field int, b []byte) pb {
	if len(b) == 0 {
		return m
	}
	return m.msg(field, b)
}

func (m pb) str(field int, s string) pb { return m.bytes(field, []byte(s)) }

// msg appends a nested message, even an empty one: which member of a
// oneof is set is told by its presence.
func (m pb) msg(field int, b []byte) pb {
	m = binary.AppendUvarint(m.tag(field, wireBytes), uint64(len(b)))
	return append(m, b...)
}

var errTruncated = errors.New("truncated protobuf message")

// fields calls f for each field of a message, in order: v holds a varint
// field's value, b a length-delimited field's bytes (aliasing msg).
func fields(msg []byte, f func(field int, v uint64, b []byte) error) error {
	for len(msg) > 0 {
		key, n := binary.Uvarint(msg)
		if n <= 0 {
			return errTruncated
		}
		msg = msg[n:]
		field, wire := int(key>>3), int(key&7)
		var (
			v uint64
			b []byte
		)
		switch wire {
		case wireVarint:
			if v, n = binary.Uvarint(msg); n <= 0 {
				return errTruncated
			}
			msg = msg[n:]
		case wireBytes:
			l, n := binary.Uvarint(msg)
			if n <= 0 || uint64(len(msg)-n) < l {
				return errTruncated
			}
			b, msg = msg[n:n+int(l)], msg[n+int(l):]
		case wire64, wire32:
			size := 8
			if wire == wire32 {
				size = 4
			}
			if len(msg) < size {
				return errTruncated
			}
			msg = msg[size:]
			continue
		default:
			return fmt.Errorf("protobuf wire type %d of field %d is not supported", wire, field)
		}
		if err := f(field, v, b); err != nil {
			return err
		}
	}
	return nil
}

// gRPC frames each message with a flag byte (1: compressed, which this
// client never asks for) and a 4-byte big-endian length.
const frameHeader = 5

// maxMessage bounds a message this client accepts: etcd's default
// --max-request-bytes is 1.5 MiB, and a page of List stays well below.
const maxMessage = 64 << 20

func frame(msg []byte) []byte {
	out := make([]byte, frameHeader, frameHeader+len(msg))
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}
