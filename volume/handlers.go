package volume

import (
	"context"
	"errors"
	"fmt"
	"time"

	plugin "github.com/docker/go-plugins-helpers/volume"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// The Docker volume plugin protocol (go-plugins-helpers' volume.Driver):
// each handler validates its request, then runs as one d.op.

// Create writes the volume intent, with the lowest free minor for its type
// and root, in one transaction guarded against every concurrent change to
// the host's volumes, so two creates can never pick the same minor. A
// repeated create with the same options is a no-op; with other options it
// is an error.
func (d *Driver) Create(r *plugin.CreateRequest) error {
	return d.op("create", r.Name, func(ctx context.Context) error {
		nv, err := NewVolume(d.host, r.Name, d.root, r.Options)
		if err != nil {
			return err
		}
		if nv.Root != d.root {
			if err := checkRoot(nv.Root); err != nil {
				return err
			}
		}
		return d.create(ctx, nv)
	})
}

// Remove deletes the intent unless the volume is mounted, then waits for
// the host agent to have torn the device down (its status key gone). A
// volume that does not exist (any more) only waits for that, so a remove
// retried after a timeout completes once the agent has caught up.
func (d *Driver) Remove(r *plugin.RemoveRequest) error {
	return d.op("remove", r.Name, func(ctx context.Context) error {
		if err := schema.ValidateVolumeName("volume name", r.Name); err != nil {
			return err
		}
		rev, err := d.remove(ctx, r.Name)
		if err != nil {
			return err
		}
		return d.waitRemoved(ctx, r.Name, rev)
	})
}

// Mount records the mount ID as mounting, waits until the host agent has
// applied that revision (socket present, device node created), records it
// as mounted and returns the device node, which Docker bind-mounts and Kata
// resolves to the socket. Only a mounted ID holds Remove off: Docker never
// sends Unmount after a failed Mount, so an ID whose Mount did not answer
// success (this driver was killed meanwhile, or the agent failed) must not
// keep the volume in use forever. On failure the ID is taken back out.
func (d *Driver) Mount(r *plugin.MountRequest) (*plugin.MountResponse, error) {
	var resp *plugin.MountResponse
	err := d.op("mount", r.Name, func(ctx context.Context) error {
		if err := errors.Join(schema.ValidateVolumeName("volume name", r.Name), validateMountID(r.ID)); err != nil {
			return err
		}
		v, rev, err := d.update(ctx, r.Name, func(v *schema.Volume) (bool, error) {
			return AddMounting(v, r.ID), nil
		})
		if err != nil {
			return err
		}
		err = d.waitReady(ctx, v, rev)
		if err == nil {
			_, _, err = d.update(ctx, r.Name, func(v *schema.Volume) (bool, error) {
				return ConfirmMount(v, r.ID), nil
			})
		}
		if err != nil {
			// A failed Mount is never followed by an Unmount.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_, _, uerr := d.update(uctx, r.Name, func(v *schema.Volume) (bool, error) {
				return RemoveMount(v, r.ID), nil
			})
			cancel()
			if uerr != nil && !errors.Is(uerr, ErrNotExist) {
				d.log.Warn("taking back the mount ID of a failed mount", "volume", r.Name, "id", r.ID, "error", uerr)
			}
			return err
		}
		resp = &plugin.MountResponse{Mountpoint: v.DevicePath()}
		return nil
	})
	return resp, err
}

// Unmount removes the mount ID from the intent. The device stays: other
// mounts, or the next one, use it.
func (d *Driver) Unmount(r *plugin.UnmountRequest) error {
	return d.op("unmount", r.Name, func(ctx context.Context) error {
		if err := errors.Join(schema.ValidateVolumeName("volume name", r.Name), validateMountID(r.ID)); err != nil {
			return err
		}
		_, _, err := d.update(ctx, r.Name, func(v *schema.Volume) (bool, error) {
			if !RemoveMount(v, r.ID) {
				return false, fmt.Errorf("volume %s is not mounted with ID %s", r.Name, r.ID)
			}
			return true, nil
		})
		return err
	})
}

// Path returns the device node, as the seed did.
func (d *Driver) Path(r *plugin.PathRequest) (*plugin.PathResponse, error) {
	var resp *plugin.PathResponse
	err := d.op("path", r.Name, func(ctx context.Context) error {
		v, _, err := d.existing(ctx, r.Name)
		if err != nil {
			return err
		}
		resp = &plugin.PathResponse{Mountpoint: v.DevicePath()}
		return nil
	})
	return resp, err
}

// Get returns the volume with its options and the host agent's status.
func (d *Driver) Get(r *plugin.GetRequest) (*plugin.GetResponse, error) {
	var resp *plugin.GetResponse
	err := d.op("get", r.Name, func(ctx context.Context) error {
		v, kv, err := d.existing(ctx, r.Name)
		if err != nil {
			return err
		}
		st, _, err := d.getStatus(ctx, r.Name)
		if err != nil {
			d.log.Warn("reading volume status", "volume", r.Name, "error", err)
		}
		resp = &plugin.GetResponse{Volume: toDocker(v, kv, st)}
		return nil
	})
	return resp, err
}

// List returns this host's volumes from etcd, each with its device node as
// mountpoint (the seed reported its root directory instead).
func (d *Driver) List() (*plugin.ListResponse, error) {
	resp := &plugin.ListResponse{Volumes: []*plugin.Volume{}}
	err := d.op("list", "", func(ctx context.Context) error {
		kvs, _, err := d.st.List(ctx, schema.VolumesPrefix(d.host))
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			v, err := schema.DecodeAs[schema.Volume](kv.Value)
			if err != nil {
				d.log.Warn("skipping unreadable volume intent", "key", kv.Key, "error", err)
				continue
			}
			resp.Volumes = append(resp.Volumes, &plugin.Volume{
				Name: v.Name, Mountpoint: v.DevicePath(), CreatedAt: createdAt(v),
			})
		}
		return nil
	})
	return resp, err
}

// Capabilities: a volume lives on one host.
func (d *Driver) Capabilities() *plugin.CapabilitiesResponse {
	return &plugin.CapabilitiesResponse{Capabilities: plugin.Capability{Scope: "local"}}
}

func createdAt(v *schema.Volume) string {
	if v.CreatedAt.IsZero() {
		return ""
	}
	return v.CreatedAt.Format(time.RFC3339)
}

// toDocker builds the Volume that `docker volume inspect` shows: options,
// device numbers, mounts and what the host agent reports.
func toDocker(v *schema.Volume, kv *store.KV, st *schema.VolumeStatus) *plugin.Volume {
	status := map[string]any{
		"host":     v.Host,
		"type":     string(v.Type),
		"device":   v.Device,
		"path":     v.Root,
		"socket":   v.SocketPath(),
		"major":    v.Type.Major(),
		"minor":    v.Minor,
		"bdev":     v.Bdev,
		"mounts":   len(v.Mounts),
		"revision": kv.ModRevision,
	}
	if v.Malloc != nil {
		status["size"] = v.Malloc.SizeBytes
		status["blocksize"] = v.Malloc.BlockSize
	}
	// Only mounts change after a create, so any status written since this
	// intent was created describes its device; one from before is about an
	// earlier volume of the same name.
	switch {
	case st == nil || st.ObservedRevision < kv.CreateRevision:
		status["state"] = "pending"
	case st.Error != "":
		status["state"] = "error"
	case st.Ready:
		status["state"] = "ready"
	default:
		status["state"] = "pending"
	}
	if st != nil && st.ObservedRevision >= kv.CreateRevision {
		// What the agent found: a controller made by hand is adopted (and
		// never deleted by uspace); owned objects go with the volume.
		status["adopted"] = st.Adopted
		status["ownsController"] = st.OwnsController
		status["ownsBdev"] = st.OwnsBdev
		if st.Bdev != "" {
			status["bdev"] = st.Bdev
		}
	}
	if st != nil {
		status["observedRevision"] = st.ObservedRevision
		if st.Error != "" {
			status["error"] = st.Error
		}
	}
	return &plugin.Volume{Name: v.Name, Mountpoint: v.DevicePath(), CreatedAt: createdAt(v), Status: status}
}
