package host

import (
	"bytes"
	"runtime"
	"sync"

	"github.com/uspace-io/uspace/agent/vppstate"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// predecoded holds the host-side interface intents of a snapshot decoded
// ahead, on every core: the one reconcile worker then finds each value of
// a start-up decoded, which is most of what reconciling thousands of keys
// that need nothing costs it. Each entry goes at its key's next spec,
// whatever the value then, so nothing outlives one pass over the snapshot.
type predecoded struct {
	mu sync.Mutex
	m  map[string]decodedIntent // by owner
}

type decodedIntent struct {
	value []byte
	hi    *schema.HostInterface
	err   error
}

// fill replaces what is held with the decodes of ifs.
func (p *predecoded) fill(ifs []store.KV) {
	parts := make([]map[string]decodedIntent, runtime.GOMAXPROCS(0))
	per := (len(ifs) + len(parts) - 1) / len(parts)
	var wg sync.WaitGroup
	for i := range parts {
		chunk := ifs[min(i*per, len(ifs)):min((i+1)*per, len(ifs))]
		wg.Go(func() {
			m := make(map[string]decodedIntent, len(chunk))
			for _, kv := range chunk {
				k, err := schema.ParseKey(kv.Key)
				if err != nil || k.Kind != schema.KindInterfaceKey {
					continue
				}
				hi, err := schema.DecodeAt[schema.HostInterface](k, kv.Value)
				m[vppstate.Owner(kv.Key)] = decodedIntent{value: kv.Value, hi: hi, err: err}
			}
			parts[i] = m
		})
	}
	wg.Wait()
	all := make(map[string]decodedIntent, len(ifs))
	for _, m := range parts {
		for o, d := range m {
			all[o] = d
		}
	}
	p.mu.Lock()
	p.m = all
	p.mu.Unlock()
}

// take returns owner's decode held for value, and drops what is held for
// owner.
func (p *predecoded) take(owner string, value []byte) (*schema.HostInterface, error, bool) {
	p.mu.Lock()
	d, ok := p.m[owner]
	if ok {
		delete(p.m, owner)
		if len(p.m) == 0 {
			p.m = nil // a map keeps its buckets after deletes
		}
	}
	p.mu.Unlock()
	if !ok || !bytes.Equal(d.value, value) {
		return nil, nil, false
	}
	return d.hi, d.err, true
}
