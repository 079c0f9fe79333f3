package store

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// MaxOps is etcd's default --max-txn-ops. Apply refuses bigger transactions
// itself so the caller gets an error naming the limit instead of etcd's
// "too many operations in txn request".
const MaxOps = 128

// listPage bounds one range response, so that listing a large prefix never
// builds a response near gRPC's message limit.
const listPage = 1000

// ErrConflict is wrapped by every error reporting a failed guard.
var ErrConflict = errors.New("conflict")

// KV is one key as etcd stores it.
type KV struct {
	Key            string
	Value          []byte
	ModRevision    int64
	CreateRevision int64
	// Version counts the key's changes since its creation (1 when created).
	Version int64
	// Lease is the lease the key is bound to, 0 if none.
	Lease int64
}

func fromPB(kv *mvccpb.KeyValue) KV {
	return KV{Key: string(kv.Key), Value: kv.Value, ModRevision: kv.ModRevision, CreateRevision: kv.CreateRevision, Version: kv.Version, Lease: kv.Lease}
}

type guardKind int

const (
	guardNone guardKind = iota
	guardCreateOnly
	guardExists
	guardModRevision
	guardPrefix // only in ConflictError, from a PrefixGuard
)

// Guard is a condition on a key's current state that must hold for a
// transaction to be applied. The zero Guard always holds.
type Guard struct {
	kind guardKind
	rev  int64
}

// CreateOnly holds when the key does not exist.
func CreateOnly() Guard { return Guard{kind: guardCreateOnly} }

// Exists holds when the key exists.
func Exists() Guard { return Guard{kind: guardExists} }

// ModRevision holds when the key was last modified at revision rev; rev 0
// means the key must not exist. This is the compare-and-swap of a
// read-modify-write.
func ModRevision(rev int64) Guard { return Guard{kind: guardModRevision, rev: rev} }

func (g Guard) String() string {
	switch g.kind {
	case guardCreateOnly:
		return "must not exist"
	case guardExists:
		return "must exist"
	case guardModRevision:
		if g.rev == 0 {
			return "must not exist"
		}
		return fmt.Sprintf("must be at mod revision %d", g.rev)
	case guardPrefix:
		return fmt.Sprintf("must have no key changed after revision %d", g.rev)
	}
	return "none"
}

func (g Guard) compare(key string) (clientv3.Cmp, bool) {
	switch g.kind {
	case guardCreateOnly:
		return clientv3.Compare(clientv3.CreateRevision(key), "=", 0), true
	case guardExists:
		return clientv3.Compare(clientv3.CreateRevision(key), ">", 0), true
	case guardModRevision:
		return clientv3.Compare(clientv3.ModRevision(key), "=", g.rev), true
	}
	return clientv3.Cmp{}, false
}

// holds evaluates the guard against a key's mod revision (0: absent), the
// same test etcd made.
func (g Guard) holds(modRev int64) bool {
	switch g.kind {
	case guardCreateOnly:
		return modRev == 0
	case guardExists:
		return modRev != 0
	case guardModRevision:
		return modRev == g.rev
	}
	return true
}

// Op is one write in a transaction: a put of Value, or a delete, applied
// only if Guard holds.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
	Guard  Guard
}

// ConflictError reports the first guard that did not hold.
type ConflictError struct {
	Key   string
	Guard Guard
	// ModRevision is the key's mod revision when the guard was checked, 0 if
	// it did not exist.
	ModRevision int64
}

func (e *ConflictError) Error() string {
	state := "absent"
	if e.ModRevision != 0 {
		state = fmt.Sprintf("at mod revision %d", e.ModRevision)
	}
	return fmt.Sprintf("%v: key %q %s but is %s", ErrConflict, e.Key, e.Guard, state)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// Apply performs all ops in one etcd transaction and returns its revision.
// Either every op is applied or, when a guard fails, none is and the error
// is a *ConflictError (wrapping ErrConflict) naming the first failing key in
// ops order.
func (c *Client) Apply(ctx context.Context, ops ...Op) (int64, error) {
	return c.apply(ctx, nil, ops)
}

// PrefixGuard holds when no key under Prefix was created or changed after
// revision Since: the guard of a read-modify-write over a whole prefix
// (allocating the lowest free minor or memif id among a host's intents),
// where a per-key guard cannot see a key someone else adds. A delete under
// the prefix does not break it; deletes only free what was read as taken.
type PrefixGuard struct {
	Prefix string
	Since  int64
}

// ApplyIfUnchanged is Apply with a PrefixGuard on top of the ops' own
// guards. When the prefix changed, the error is a *ConflictError naming
// the prefix.
func (c *Client) ApplyIfUnchanged(ctx context.Context, pg PrefixGuard, ops ...Op) (int64, error) {
	return c.apply(ctx, &pg, ops)
}

func (c *Client) apply(ctx context.Context, pg *PrefixGuard, ops []Op) (int64, error) {
	if len(ops) == 0 {
		return 0, errors.New("apply: no operations")
	}
	if len(ops) > MaxOps {
		return 0, fmt.Errorf("apply: %d operations in one transaction, etcd allows at most %d (--max-txn-ops)", len(ops), MaxOps)
	}
	var (
		cmps    []clientv3.Cmp
		writes  []clientv3.Op
		reads   []clientv3.Op
		guarded []Op
		seen    = make(map[string]bool, len(ops))
	)
	if pg != nil {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(pg.Prefix), "<", pg.Since+1).WithPrefix())
		// No limit: etcd applies a limit before the min-mod-revision filter.
		reads = append(reads, clientv3.OpGet(pg.Prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
			clientv3.WithMinModRev(pg.Since+1)))
	}
	for _, op := range ops {
		if op.Key == "" {
			return 0, errors.New("apply: empty key")
		}
		// etcd rejects a transaction writing a key twice; say which key.
		if seen[op.Key] {
			return 0, fmt.Errorf("apply: key %q appears twice in one transaction", op.Key)
		}
		seen[op.Key] = true
		if op.Delete {
			writes = append(writes, clientv3.OpDelete(op.Key))
		} else {
			writes = append(writes, clientv3.OpPut(op.Key, string(op.Value)))
		}
		if cmp, ok := op.Guard.compare(op.Key); ok {
			cmps = append(cmps, cmp)
			// Read back on failure, in the same transaction, so the reported
			// key is the one that failed at that revision, not a guess made
			// after further writes.
			reads = append(reads, clientv3.OpGet(op.Key, clientv3.WithKeysOnly()))
			guarded = append(guarded, op)
		}
	}
	resp, err := c.etcd.Txn(ctx).If(cmps...).Then(writes...).Else(reads...).Commit()
	if err != nil {
		return 0, fmt.Errorf("apply %d operations starting at key %q: %w", len(ops), ops[0].Key, err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	if pg != nil {
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			return resp.Header.Revision, &ConflictError{Key: pg.Prefix, Guard: Guard{kind: guardPrefix, rev: pg.Since}, ModRevision: kvs[0].ModRevision}
		}
		resp.Responses = resp.Responses[1:]
	}
	for i, op := range guarded {
		var modRev int64
		if kvs := resp.Responses[i].GetResponseRange().Kvs; len(kvs) > 0 {
			modRev = kvs[0].ModRevision
		}
		if !op.Guard.holds(modRev) {
			return resp.Header.Revision, &ConflictError{Key: op.Key, Guard: op.Guard, ModRevision: modRev}
		}
	}
	// Unreachable unless etcd and holds disagree; still report a conflict
	// rather than claim success.
	return resp.Header.Revision, fmt.Errorf("%w: a guard failed in etcd but none fails on read-back of %d keys", ErrConflict, len(guarded))
}

// Get returns the key, or nil when it does not exist.
func (c *Client) Get(ctx context.Context, key string) (*KV, error) {
	resp, err := c.etcd.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	kv := fromPB(resp.Kvs[0])
	return &kv, nil
}

// List returns every key under prefix, sorted by key, as of one revision,
// which it also returns. It reads in pages so a large prefix costs etcd
// several small requests rather than one huge one.
func (c *Client) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	return c.listRange(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix))
}

func (c *Client) listRange(ctx context.Context, key, end string) ([]KV, int64, error) {
	var (
		out []KV
		rev int64
	)
	from := key
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		// Pages after the first read at the first page's revision, so the
		// result is one consistent snapshot even while others write.
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := c.etcd.Get(ctx, from, opts...)
		if err != nil {
			return nil, 0, fmt.Errorf("list %q (at revision %d, %d keys read): %w", key, rev, len(out), err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			out = append(out, fromPB(kv))
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}
