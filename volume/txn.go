package volume

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// create writes the volume intent, with the lowest free minor for its type
// and root, guarded against every concurrent change to the host's volumes
// (store.UpdateUnderPrefix), so two creates can never pick the same minor.
func (d *Driver) create(ctx context.Context, nv *schema.Volume) error {
	attempts, written := 0, false
	_, err := d.st.UpdateUnderPrefix(ctx, schema.VolumesPrefix(d.host), d.key(nv.Name), func(kvs []store.KV, old *store.KV) ([]byte, error) {
		attempts++
		val, err := allocate(nv, kvs, old)
		written = err == nil && old == nil
		return val, err
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("volume %s: gave up after %d attempts: the volumes of host %s keep changing concurrently: %w", nv.Name, attempts, d.host, err)
	case err != nil:
		return err
	}
	if written {
		d.log.Debug("volume intent written", "volume", nv.Name, "minor", nv.Minor, "attempt", attempts)
	}
	return nil
}

// allocate is one attempt of create: given the host's volume intents, the
// new intent's value, or the existing one's (a repeated create with the
// same options), or an error.
func allocate(nv *schema.Volume, kvs []store.KV, old *store.KV) ([]byte, error) {
	vols := make([]*schema.Volume, 0, len(kvs))
	for _, kv := range kvs {
		v, err := schema.DecodeAs[schema.Volume](kv.Value)
		if err != nil {
			// Its minor is unknown, so none can be handed out safely.
			return nil, fmt.Errorf("cannot allocate a device minor: unreadable volume intent at %s: %w", kv.Key, err)
		}
		if v.Name == nv.Name {
			if SameSpec(v, nv) {
				return old.Value, nil
			}
			return nil, fmt.Errorf("volume %s already exists with other options (%s); remove it first or repeat its options",
				nv.Name, describeSpec(v))
		}
		vols = append(vols, v)
	}
	if err := CheckConflicts(vols, nv); err != nil {
		return nil, err
	}
	taken, err := NodesOnDisk(nv.Root, nv.Type.Major(), nv.Device)
	if err != nil {
		return nil, err
	}
	if nv.Minor, err = AllocateMinor(vols, nv.Type, nv.Root, taken); err != nil {
		return nil, err
	}
	nv.CreatedAt = time.Now().UTC().Truncate(time.Second)
	return schema.Encode(nv)
}

// update is a guarded read-modify-write of a volume intent: fn changes v
// and reports whether to write it; the write only lands if nobody wrote the
// key since it was read, else it starts over. It returns the intent as
// written (or as read, when fn had nothing to change) and its mod revision.
func (d *Driver) update(ctx context.Context, name string, fn func(v *schema.Volume) (bool, error)) (*schema.Volume, int64, error) {
	return updateIntent(ctx, d.st, d.host, name, fn)
}

func updateIntent(ctx context.Context, st *store.Client, host, name string, fn func(v *schema.Volume) (bool, error)) (*schema.Volume, int64, error) {
	var v *schema.Volume
	rev, err := st.Update(ctx, schema.VolumeKey(host, name), func(kv *store.KV) ([]byte, error) {
		if kv == nil {
			return nil, errNotExist(name)
		}
		var err error
		if v, err = schema.DecodeAs[schema.Volume](kv.Value); err != nil {
			v = nil
			return nil, fmt.Errorf("volume %s: unreadable intent at %s: %w", name, kv.Key, err)
		}
		write, err := fn(v)
		if err != nil || !write {
			return kv.Value, err
		}
		return schema.Encode(v)
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return nil, 0, fmt.Errorf("volume %s: gave up after %d attempts: the intent keeps changing concurrently: %w", name, store.ConflictAttempts, err)
	case errors.Is(err, ErrNotExist) || v == nil:
		return nil, 0, err
	}
	return v, rev, err
}

// ReleaseMounts is the operators' way out (`uspacectl volume unmount`)
// when a mount ID stays recorded although no container uses the volume:
// Docker sends no Unmount after a Mount that failed, and a driver killed
// after answering a Mount but before recording it leaves the ID behind.
// It removes ids (every ID when all) from the volume's mounts with a
// guarded write and returns the intent as written; an ID the volume does
// not have is an error and nothing is written.
func ReleaseMounts(ctx context.Context, st *store.Client, host, name string, ids []string, all bool) (*schema.Volume, error) {
	if err := errors.Join(schema.ValidateHost("host", host), schema.ValidateVolumeName("volume name", name)); err != nil {
		return nil, err
	}
	if all == (len(ids) > 0) {
		return nil, errors.New("name the mount IDs to release, or all of them, not both")
	}
	v, _, err := updateIntent(ctx, st, host, name, func(v *schema.Volume) (bool, error) {
		if all {
			changed := len(v.Mounts)+len(v.Mounting) > 0
			v.Mounts, v.Mounting = nil, nil
			return changed, nil
		}
		for _, id := range ids {
			if !RemoveMount(v, id) {
				return false, fmt.Errorf("volume %s has no mount ID %s (mounted: %v, mounting: %v)", name, id, v.Mounts, v.Mounting)
			}
		}
		return true, nil
	})
	return v, err
}

// remove deletes the intent unless the volume is mounted, guarded on what
// it read, and returns the revision of the delete (0: there was no intent).
func (d *Driver) remove(ctx context.Context, name string) (int64, error) {
	rev, err := d.st.Update(ctx, d.key(name), func(kv *store.KV) ([]byte, error) {
		if kv == nil {
			return nil, nil
		}
		v, err := schema.DecodeAs[schema.Volume](kv.Value)
		if err != nil {
			return nil, fmt.Errorf("volume %s: unreadable intent at %s: %w", name, kv.Key, err)
		}
		if n := len(v.Mounts); n > 0 {
			return nil, fmt.Errorf("volume %s is still in use (%d mount(s): %s); if no container uses it any more (the driver was killed before Docker's Unmount), "+
				"release a mount with `uspacectl volume unmount --host %s %s <mount ID>`", name, n, strings.Join(v.Mounts, ", "), d.host, name)
		}
		if len(v.Mounting) > 0 {
			// Mounts that never answered success: Docker will send no
			// Unmount for them.
			d.log.Info("removing a volume with unconfirmed mount IDs", "volume", name, "ids", v.Mounting)
		}
		return nil, nil
	})
	if errors.Is(err, store.ErrConflict) {
		return 0, fmt.Errorf("volume %s: gave up after %d attempts: the intent keeps changing concurrently: %w", name, store.ConflictAttempts, err)
	}
	return rev, err
}
