package spdksim

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
)

// kind is the SPDK decoder a parameter goes through (spdk_json_decode_*).
type kind int

const (
	kString kind = iota
	kUint64
	kUint32
	kInt32
	kBool
	kUUID
)

// field describes one entry of an spdk_json_object_decoder table.
type field struct {
	name     string
	kind     kind
	optional bool
}

// args holds decoded parameters by name; absent optional ones are missing.
type args map[string]any

func (a args) str(name string) (string, bool) {
	v, ok := a[name].(string)
	return v, ok
}

func (a args) u64(name string) uint64 {
	v, _ := a[name].(uint64)
	return v
}

func (a args) i64(name string) int64 {
	v, _ := a[name].(int64)
	return v
}

func (a args) boolean(name string) bool {
	v, _ := a[name].(bool)
	return v
}

func (a args) has(name string) bool {
	_, ok := a[name]
	return ok
}

// jsonType classifies a raw JSON value by its first byte.
func jsonType(raw json.RawMessage) byte {
	t := bytes.TrimLeft(raw, " \t\r\n")
	if len(t) == 0 {
		return 0
	}
	switch c := t[0]; c {
	case '{', '[', '"', 't', 'f', 'n':
		return c
	default:
		return '0' // number
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// decodeObject mirrors spdk_json_decode_object(_relaxed): params must be an
// object; every key must be known (unless relaxed); every required key must
// be present; every value must have the decoder's type. Any failure makes
// the whole decode fail, as in SPDK.
func decodeObject(params json.RawMessage, fields []field, relaxed bool) (args, bool) {
	if params == nil || jsonType(params) != '{' {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(params, &obj); err != nil {
		return nil, false
	}
	out := args{}
	for key, raw := range obj {
		var f *field
		for i := range fields {
			if fields[i].name == key {
				f = &fields[i]
				break
			}
		}
		if f == nil {
			if relaxed {
				continue
			}
			return nil, false
		}
		v, ok := decodeValue(raw, f.kind)
		if !ok {
			return nil, false
		}
		out[key] = v
	}
	for _, f := range fields {
		if !f.optional && !out.has(f.name) {
			return nil, false
		}
	}
	return out, true
}

func decodeValue(raw json.RawMessage, k kind) (any, bool) {
	t := jsonType(raw)
	switch k {
	case kString, kUUID:
		if t != '"' {
			return nil, false
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, false
		}
		if k == kUUID && !uuidRE.MatchString(s) {
			return nil, false
		}
		return s, true
	case kBool:
		if t != 't' && t != 'f' {
			return nil, false
		}
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return nil, false
		}
		return b, true
	case kUint64, kUint32:
		if t != '0' {
			return nil, false
		}
		bits := 64
		if k == kUint32 {
			bits = 32
		}
		v, err := strconv.ParseUint(string(bytes.TrimSpace(raw)), 10, bits)
		if err != nil {
			return nil, false
		}
		return v, true
	case kInt32:
		if t != '0' {
			return nil, false
		}
		v, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 32)
		if err != nil {
			return nil, false
		}
		return v, true
	}
	return nil, false
}
