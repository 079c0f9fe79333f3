package lite

import (
	"encoding/binary"
	"fmt"
)

// etcd's messages (api/v3/etcdserverpb/rpc.proto, mvccpb/kv.proto), field
// numbers as there; only the fields this client sets or reads.

// KV is one key as etcd stores it.
type KV struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
}

// Result is what one operation of a transaction returned.
type Result struct {
	// KVs are a read's keys, sorted by key; More says the read stopped at
	// its limit.
	KVs  []KV
	More bool
	// Deleted is how many keys a delete removed.
	Deleted int64
}

// TxnResult is a transaction's outcome: whether its comparisons held
// (then its Then operations ran, else its Else operations), the revision
// it was made at, and one Result per operation that ran. Resent says it
// was sent again after etcd could not serve it (see Txn).
type TxnResult struct {
	Succeeded bool
	Revision  int64
	Results   []Result
	Resent    bool
}

type opKind int

const (
	opRange opKind = iota + 1
	opPut
	opDelete
)

// request is the operation's own message: PutRequest (key 1, value 2),
// DeleteRangeRequest (key 1, range_end 2) or RangeRequest (key 1,
// range_end 2, limit 3, revision 4).
func (o Op) request() []byte {
	switch o.kind {
	case opPut:
		return pb(nil).str(1, o.key).bytes(2, o.value)
	case opDelete:
		return pb(nil).str(1, o.key).str(2, o.end)
	}
	return pb(nil).str(1, o.key).str(2, o.end).int(3, o.limit).int(4, o.rev)
}

// requestOp is RequestOp: request_range 1, request_put 2,
// request_delete_range 3.
func (o Op) requestOp() []byte {
	return pb(nil).msg(int(o.kind), o.request())
}

func (c Cmp) encode() []byte {
	// Compare: result 1, target 2, key 3, the target's value in the oneof
	// at 4 + target, range_end 64. The oneof member is sent even when
	// zero: its presence says which target the value is for.
	m := pb(nil).uint(1, uint64(c.result)).uint(2, uint64(c.target)).str(3, c.key)
	m = binary.AppendUvarint(m.tag(int(c.target)+4, wireVarint), uint64(c.value))
	return m.str(64, c.end)
}

func txnRequest(cmps []Cmp, then, els []Op) []byte {
	var m pb
	for _, c := range cmps {
		m = m.msg(1, c.encode())
	}
	for _, o := range then {
		m = m.msg(2, o.requestOp())
	}
	for _, o := range els {
		m = m.msg(3, o.requestOp())
	}
	return m
}

// headerRevision reads ResponseHeader.revision.
func headerRevision(b []byte) (int64, error) {
	var rev int64
	err := fields(b, func(f int, v uint64, _ []byte) error {
		if f == 3 {
			rev = int64(v)
		}
		return nil
	})
	return rev, err
}

func decodeKV(b []byte) (KV, error) {
	var kv KV
	err := fields(b, func(f int, v uint64, b []byte) error {
		switch f {
		case 1:
			kv.Key = string(b)
		case 2:
			kv.CreateRevision = int64(v)
		case 3:
			kv.ModRevision = int64(v)
		case 5:
			kv.Value = b
		}
		return nil
	})
	return kv, err
}

// decodeRange reads a RangeResponse: header 1, kvs 2, more 3.
func decodeRange(b []byte) (rev int64, r Result, err error) {
	err = fields(b, func(f int, v uint64, b []byte) error {
		var err error
		switch f {
		case 1:
			rev, err = headerRevision(b)
		case 2:
			var kv KV
			kv, err = decodeKV(b)
			r.KVs = append(r.KVs, kv)
		case 3:
			r.More = v != 0
		}
		return err
	})
	return rev, r, err
}

// decodeTxn reads a TxnResponse: header 1, succeeded 2, responses 3
// (ResponseOp: response_range 1, response_put 2, response_delete_range 3,
// whose deleted count is field 2).
func decodeTxn(b []byte) (*TxnResult, error) {
	t := &TxnResult{}
	err := fields(b, func(f int, v uint64, b []byte) error {
		switch f {
		case 1:
			var err error
			t.Revision, err = headerRevision(b)
			return err
		case 2:
			t.Succeeded = v != 0
		case 3:
			var r Result
			err := fields(b, func(kind int, _ uint64, b []byte) error {
				var err error
				switch opKind(kind) {
				case opRange:
					_, r, err = decodeRange(b)
				case opDelete:
					err = fields(b, func(f int, v uint64, _ []byte) error {
						if f == 2 {
							r.Deleted = int64(v)
						}
						return nil
					})
				}
				return err
			})
			if err != nil {
				return err
			}
			t.Results = append(t.Results, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decoding etcd's transaction response: %w", err)
	}
	return t, nil
}
