package host

import (
	"fmt"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// onNetworkEvent keeps the networks' objects, by the name in their key.
func (a *Agent) onNetworkEvent(ev store.Event) error {
	if ev.Type == store.Progress {
		return nil
	}
	a.netMu.Lock()
	switch ev.Type {
	case store.Sync:
		a.networks, a.badNetworks = map[string]schema.Network{}, map[string]error{}
		for _, kv := range ev.Snapshot {
			a.noteNetworkLocked(kv)
		}
	case store.Put:
		a.noteNetworkLocked(ev.KV)
	case store.Delete:
		if k, err := schema.ParseKey(ev.KV.Key); err == nil {
			delete(a.networks, k.Network)
			delete(a.badNetworks, k.Network)
		}
	}
	a.netMu.Unlock()
	// A network's settings shape every member's bridge domain, and its
	// VNI whether it spans hosts.
	a.ifaces.EnqueueAll()
	if a.cross != nil {
		a.cross.NetworksChanged()
	}
	return nil
}

// noteNetworkLocked records the network object kv. One that is not a
// Network of its key is logged and refused: the network keeps its last
// good value, so a bad write changes no bridge domain and no tunnel, and
// every interface on it reports the refusal in its status until the value
// is fixed.
func (a *Agent) noteNetworkLocked(kv store.KV) {
	k, err := schema.ParseKey(kv.Key)
	if err != nil {
		a.log.Error("ignoring a network key outside the v1 layout", "key", kv.Key, "err", err)
		return
	}
	n, err := schema.DecodeAt[schema.Network](k, kv.Value)
	if err != nil {
		a.log.Error("network object refused: its interfaces report it until it is fixed", "network", k.Network, "err", err)
		a.badNetworks[k.Network] = fmt.Errorf("network %s: its object is refused (%w): fix it, nothing on the network changes until then", k.Network, err)
		return
	}
	delete(a.badNetworks, k.Network)
	a.networks[k.Network] = *n
}

// network returns a network's object, if it has one, or why it is refused.
func (a *Agent) network(name string) (schema.Network, bool, error) {
	a.netMu.RLock()
	defer a.netMu.RUnlock()
	n, ok := a.networks[name]
	return n, ok, a.badNetworks[name]
}

// networkVNI is the VNI of a network's object.
func (a *Agent) networkVNI(name string) uint32 {
	n, _, _ := a.network(name)
	return n.VNI
}
