package lite

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Cmp is a condition of a transaction on a key, or on every key of a
// range.
type Cmp struct {
	key, end string
	target   cmpTarget
	result   cmpResult
	value    int64
}

type cmpTarget int

// Compare targets as etcd numbers them; the value of target t is field
// 4 + t of etcd's Compare.
const (
	targetCreate cmpTarget = 1
	targetMod    cmpTarget = 2
)

type cmpResult int

const (
	resultEqual cmpResult = 0
	resultLess  cmpResult = 2
)

// ModRevisionIs holds when key was last written at revision rev; rev 0:
// when key does not exist.
func ModRevisionIs(key string, rev int64) Cmp {
	return Cmp{key: key, target: targetMod, result: resultEqual, value: rev}
}

// NoKeyIn holds when no key k with from <= k < to exists.
func NoKeyIn(from, to string) Cmp {
	return Cmp{key: from, end: to, target: targetCreate, result: resultEqual}
}

// UnchangedSince holds when no key under prefix was created or changed
// after revision rev (deletes do not count).
func UnchangedSince(prefix string, rev int64) Cmp {
	return Cmp{key: prefix, end: PrefixEnd(prefix), target: targetMod, result: resultLess, value: rev + 1}
}

// Op is one operation of a transaction: a put, a delete or a read.
type Op struct {
	kind     opKind
	key, end string
	value    []byte
	limit    int64
	rev      int64
}

// Put writes value at key.
func Put(key string, value []byte) Op { return Op{kind: opPut, key: key, value: value} }

// Delete removes key (nothing when it is absent).
func Delete(key string) Op { return Op{kind: opDelete, key: key} }

// Get reads key.
func Get(key string) Op { return Op{kind: opRange, key: key} }

// GetPrefix reads every key under prefix, sorted by key.
func GetPrefix(prefix string) Op { return Op{kind: opRange, key: prefix, end: PrefixEnd(prefix)} }

// PrefixEnd is the end of the range of keys starting with prefix.
func PrefixEnd(prefix string) string {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return string(end[:i+1])
		}
	}
	// Only 0xff bytes: every key from prefix on.
	return "\x00"
}

// Txn runs one transaction: if every cmp holds, the then operations, else
// the els operations, atomically at one revision. A read-only transaction
// that etcd could not serve for now (no leader, the leader changed, a
// timeout) is sent again until ctx ends, as etcd's own client does with
// reads; so is one guarded by comparisons, since a second run of a write
// etcd applied the first time fails its comparisons and returns its else
// branch: the result then says Resent, and the caller reads that branch
// knowing the state in it may be its own earlier write.
func (c *Client) Txn(ctx context.Context, cmps []Cmp, then, els []Op) (*TxnResult, error) {
	if len(then)+len(els) == 0 {
		return nil, errors.New("etcd transaction without operations")
	}
	readOnly := true
	for _, o := range append(slices.Clone(then), els...) {
		readOnly = readOnly && o.kind == opRange
	}
	msg, resent, err := c.call(ctx, "KV/Txn", txnRequest(cmps, then, els), readOnly || len(cmps) > 0)
	if err != nil {
		return nil, err
	}
	r, err := decodeTxn(msg)
	if err != nil {
		return nil, err
	}
	r.Resent = resent
	return r, nil
}

// Get reads key: nil when it does not exist, and the revision read at.
func (c *Client) Get(ctx context.Context, key string) (*KV, int64, error) {
	rev, r, err := c.rangeOnce(ctx, Get(key))
	if err != nil {
		return nil, 0, fmt.Errorf("get %q: %w", key, err)
	}
	if len(r.KVs) == 0 {
		return nil, rev, nil
	}
	return &r.KVs[0], rev, nil
}

// listPage bounds one range response, so that listing a large prefix never
// builds a response near the message limit.
const listPage = 1000

// List returns every key under prefix, sorted by key, as of one revision,
// which it also returns. Pages after the first read at the first page's
// revision, so the result is one snapshot even while others write.
func (c *Client) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	var (
		out []KV
		rev int64
	)
	op := GetPrefix(prefix)
	op.limit = listPage
	for {
		op.rev = rev
		r, page, err := c.rangeOnce(ctx, op)
		if err != nil {
			return nil, 0, fmt.Errorf("list %q (at revision %d, %d keys read): %w", prefix, rev, len(out), err)
		}
		if rev == 0 {
			rev = r
		}
		out = append(out, page.KVs...)
		if !page.More || len(page.KVs) == 0 {
			return out, rev, nil
		}
		op.key = page.KVs[len(page.KVs)-1].Key + "\x00"
	}
}

func (c *Client) rangeOnce(ctx context.Context, op Op) (int64, Result, error) {
	msg, _, err := c.call(ctx, "KV/Range", op.request(), true)
	if err != nil {
		return 0, Result{}, err
	}
	rev, r, err := decodeRange(msg)
	if err != nil {
		return 0, Result{}, fmt.Errorf("decoding etcd's range response: %w", err)
	}
	return rev, r, nil
}
