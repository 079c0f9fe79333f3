// Package volume is uspace's Docker volume driver, a drop-in for
// vhostuser-docker-volume: the same options (type, device, path), the same
// device nodes for Kata (<root>/block/devices/<device>, major 241 blk / 242
// scsi), but every volume is an intent in etcd under
// /uspace/v1/hosts/<host>/volumes/<name> and the host agent makes SPDK and
// the vhost-user directory match it. The driver keeps nothing locally: the
// minor, the mount IDs and the options all live in the intent, so a restart
// forgets nothing and never hands a minor out twice.
package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	plugin "github.com/docker/go-plugins-helpers/volume"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// DefaultTimeout bounds how long Mount waits for the host agent to set a
// device up and Remove waits for it to tear one down. Docker gives a volume
// plugin two minutes for these calls.
const DefaultTimeout = 30 * time.Second

// maxAttempts bounds the retries of a guarded read-modify-write that keeps
// losing to concurrent writers.
const maxAttempts = 20

// Config configures a Driver.
type Config struct {
	// Host is the host whose volumes this driver manages (the key segment
	// under /uspace/v1/hosts/); the host agent runs with the same --host.
	Host string
	// Root is the default vhost-user root (-path), clean and absolute.
	Root string
	// Timeout bounds the waits for the host agent (DefaultTimeout if 0).
	Timeout time.Duration
	// Log receives one line per request (slog.Default() if nil).
	Log *slog.Logger
}

// Driver implements go-plugins-helpers' volume.Driver on top of etcd.
type Driver struct {
	st      *store.Client
	host    string
	root    string
	timeout time.Duration
	log     *slog.Logger

	// ctx ends when the process shuts down; inflight lets it wait for the
	// requests that are still running.
	ctx      context.Context
	inflight sync.WaitGroup
}

var _ plugin.Driver = (*Driver)(nil)

// New returns a driver for cfg.Host using st. ctx bounds every request:
// cancel it only after Drain when shutting down cleanly.
func New(ctx context.Context, st *store.Client, cfg Config) (*Driver, error) {
	if err := schema.ValidateHost("host", cfg.Host); err != nil {
		return nil, err
	}
	root, err := CleanRoot(cfg.Root)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Driver{st: st, host: cfg.Host, root: root, timeout: cfg.Timeout, log: cfg.Log, ctx: ctx}, nil
}

// Handler is the Docker plugin protocol handler for d.
func (d *Driver) Handler() *plugin.Handler { return plugin.NewHandler(d) }

// Drain waits until the requests in progress have finished, or ctx ends.
func (d *Driver) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { d.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("requests still running: %w", ctx.Err())
	}
}

// PrepareRoot creates the directory layout of a vhost-user root, as the
// seed did at start: <root>/block/sockets/ and <root>/block/devices/.
func PrepareRoot(root string) error {
	for _, dir := range []string{filepath.Join(root, "block", "sockets"), filepath.Join(root, "block", "devices")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating vhost-user directory: %w", err)
		}
	}
	return nil
}

// checkRoot is the seed's test for -o path: the root must already be a
// vhost-user directory.
func checkRoot(root string) error {
	for _, sub := range []string{"block/sockets", "block/devices"} {
		fi, err := os.Stat(filepath.Join(root, sub))
		if err == nil && !fi.IsDir() {
			err = errors.New("not a directory")
		}
		if err != nil {
			return fmt.Errorf("%s is not a valid vhost-user directory: %s/: %v", root, sub, unwrapPathErr(err))
		}
	}
	return nil
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// op runs one request: bounded by the driver's context and a deadline,
// counted for Drain, logged.
func (d *Driver) op(name, vol string, fn func(ctx context.Context) error) error {
	d.inflight.Add(1)
	defer d.inflight.Done()
	// etcd round trips plus the wait for the agent.
	ctx, cancel := context.WithTimeout(d.ctx, d.timeout+10*time.Second)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	log := d.log.With("op", name, "volume", vol, "duration", time.Since(start).Round(time.Millisecond))
	read := name == "get" || name == "list" || name == "path"
	switch {
	case err != nil && !(read && errors.Is(err, ErrNotExist)):
		log.Warn("request failed", "error", err)
	case err != nil:
		// Docker asks every driver about a volume it is looking for.
		log.Debug("request failed", "error", err)
	case read:
		// Docker reads often; only changes are worth a line by default.
		log.Debug("request done")
	default:
		log.Info("request done")
	}
	return err
}

func (d *Driver) key(name string) string { return schema.VolumeKey(d.host, name) }

func (d *Driver) statusKey(name string) string {
	return schema.StatusKey(schema.Key{Kind: schema.KindVolumeKey, Host: d.host, Volume: name})
}

// ErrNotExist is wrapped by the error of every call on an unknown volume.
var ErrNotExist = errors.New("does not exist")

func errNotExist(name string) error { return fmt.Errorf("volume %s %w", name, ErrNotExist) }

// get reads a volume intent; nil when there is none.
func (d *Driver) get(ctx context.Context, name string) (*schema.Volume, *store.KV, error) {
	kv, err := d.st.Get(ctx, d.key(name))
	if err != nil || kv == nil {
		return nil, nil, err
	}
	v, err := schema.DecodeAs[schema.Volume](kv.Value)
	if err != nil {
		return nil, nil, fmt.Errorf("volume %s: unreadable intent at %s: %w", name, kv.Key, err)
	}
	return v, kv, nil
}

// getStatus reads the host agent's status of a volume; nil when there is none.
func (d *Driver) getStatus(ctx context.Context, name string) (*schema.VolumeStatus, *store.KV, error) {
	kv, err := d.st.Get(ctx, d.statusKey(name))
	if err != nil || kv == nil {
		return nil, nil, err
	}
	st, err := schema.DecodeAs[schema.VolumeStatus](kv.Value)
	if err != nil {
		return nil, kv, fmt.Errorf("volume %s: unreadable status at %s: %w", name, kv.Key, err)
	}
	return st, kv, nil
}

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

func (d *Driver) create(ctx context.Context, nv *schema.Volume) error {
	prefix := schema.VolumesPrefix(d.host)
	key := d.key(nv.Name)
	for attempt := 1; ; attempt++ {
		kvs, rev, err := d.st.List(ctx, prefix)
		if err != nil {
			return err
		}
		vols := make([]*schema.Volume, 0, len(kvs))
		for _, kv := range kvs {
			v, err := schema.DecodeAs[schema.Volume](kv.Value)
			if err != nil {
				// Its minor is unknown, so none can be handed out safely.
				return fmt.Errorf("cannot allocate a device minor: unreadable volume intent at %s: %w", kv.Key, err)
			}
			if v.Name == nv.Name {
				if SameSpec(v, nv) {
					return nil
				}
				return fmt.Errorf("volume %s already exists with other options (%s); remove it first or repeat its options",
					nv.Name, describeSpec(v))
			}
			vols = append(vols, v)
		}
		if err := CheckConflicts(vols, nv); err != nil {
			return err
		}
		taken, err := NodesOnDisk(nv.Root, nv.Type.Major(), nv.Device)
		if err != nil {
			return err
		}
		if nv.Minor, err = AllocateMinor(vols, nv.Type, nv.Root, taken); err != nil {
			return err
		}
		nv.CreatedAt = time.Now().UTC().Truncate(time.Second)
		val, err := schema.Encode(nv)
		if err != nil {
			return err
		}
		ok, err := d.putIfPrefixUnchanged(ctx, prefix, rev, key, val)
		if err != nil {
			return err
		}
		if ok {
			d.log.Debug("volume intent written", "volume", nv.Name, "minor", nv.Minor, "attempt", attempt)
			return nil
		}
		if attempt == maxAttempts {
			return fmt.Errorf("volume %s: gave up after %d attempts: the volumes of host %s keep changing concurrently", nv.Name, attempt, d.host)
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// putIfPrefixUnchanged puts key=val if no key under prefix was created or
// modified after rev (and key does not exist): a concurrent create of
// another volume adds a key no per-key guard could have named.
func (d *Driver) putIfPrefixUnchanged(ctx context.Context, prefix string, rev int64, key string, val []byte) (bool, error) {
	_, err := d.st.ApplyIfUnchanged(ctx, store.PrefixGuard{Prefix: prefix, Since: rev},
		store.Op{Key: key, Value: val, Guard: store.CreateOnly()})
	if errors.Is(err, store.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("writing volume intent %s: %w", key, err)
	}
	return true, nil
}

// backoff spreads retries of writers that lost a guard to each other:
// a random wait growing with the attempt, capped at 100ms.
func backoff(ctx context.Context, attempt int) error {
	t := time.NewTimer(rand.N(time.Duration(min(attempt, 10)) * 10 * time.Millisecond))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// update is a guarded read-modify-write of a volume intent: fn changes v
// and reports whether to write it; the write only lands if nobody wrote the
// key since it was read, else it starts over. It returns the intent as
// written (or as read, when fn had nothing to change) and its mod revision.
func (d *Driver) update(ctx context.Context, name string, fn func(v *schema.Volume) (bool, error)) (*schema.Volume, int64, error) {
	return updateIntent(ctx, d.st, d.host, name, fn)
}

func updateIntent(ctx context.Context, st *store.Client, host, name string, fn func(v *schema.Volume) (bool, error)) (*schema.Volume, int64, error) {
	key := schema.VolumeKey(host, name)
	for attempt := 1; ; attempt++ {
		kv, err := st.Get(ctx, key)
		if err != nil {
			return nil, 0, err
		}
		if kv == nil {
			return nil, 0, errNotExist(name)
		}
		v, err := schema.DecodeAs[schema.Volume](kv.Value)
		if err != nil {
			return nil, 0, fmt.Errorf("volume %s: unreadable intent at %s: %w", name, kv.Key, err)
		}
		write, err := fn(v)
		if err != nil || !write {
			return v, kv.ModRevision, err
		}
		val, err := schema.Encode(v)
		if err != nil {
			return nil, 0, err
		}
		rev, err := st.Apply(ctx, store.Op{Key: kv.Key, Value: val, Guard: store.ModRevision(kv.ModRevision)})
		if err == nil {
			return v, rev, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, 0, err
		}
		if attempt == maxAttempts {
			return nil, 0, fmt.Errorf("volume %s: gave up after %d attempts: the intent keeps changing concurrently", name, attempt)
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, 0, err
		}
	}
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

// Remove deletes the intent unless the volume is mounted, then waits for
// the host agent to have torn the device down (its status key gone). A
// volume that does not exist (any more) only waits for that, so a remove
// retried after a timeout completes once the agent has caught up.
func (d *Driver) Remove(r *plugin.RemoveRequest) error {
	return d.op("remove", r.Name, func(ctx context.Context) error {
		if err := schema.ValidateVolumeName("volume name", r.Name); err != nil {
			return err
		}
		var rev int64
		for attempt := 1; ; attempt++ {
			v, kv, err := d.get(ctx, r.Name)
			if err != nil {
				return err
			}
			if v == nil {
				break
			}
			if n := len(v.Mounts); n > 0 {
				return fmt.Errorf("volume %s is still in use (%d mount(s): %s); if no container uses it any more (the driver was killed before Docker's Unmount), "+
					"release a mount with `uspacectl volume unmount --host %s %s <mount ID>`", r.Name, n, strings.Join(v.Mounts, ", "), d.host, r.Name)
			}
			if len(v.Mounting) > 0 {
				// Mounts that never answered success: Docker will send no
				// Unmount for them.
				d.log.Info("removing a volume with unconfirmed mount IDs", "volume", r.Name, "ids", v.Mounting)
			}
			rev, err = d.st.Apply(ctx, store.Op{Key: kv.Key, Delete: true, Guard: store.ModRevision(kv.ModRevision)})
			if err == nil {
				break
			}
			if !errors.Is(err, store.ErrConflict) {
				return err
			}
			if attempt == maxAttempts {
				return fmt.Errorf("volume %s: gave up after %d attempts: the intent keeps changing concurrently", r.Name, attempt)
			}
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		}
		return d.waitRemoved(ctx, r.Name, rev)
	})
}

func (d *Driver) waitRemoved(ctx context.Context, name string, rev int64) error {
	wctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	last, err := d.st.WaitFor(wctx, d.statusKey(name), rev, func(kv *store.KV) (bool, error) { return kv == nil, nil })
	if err == nil {
		return nil
	}
	if wctx.Err() == nil || ctx.Err() != nil {
		return err
	}
	msg := fmt.Sprintf("volume %s: intent removed, but the host agent of %s has not torn the device down within %v", name, d.host, d.timeout)
	if last != nil {
		if st, err := schema.DecodeAs[schema.VolumeStatus](last.Value); err == nil && st.Error != "" {
			msg += ": " + st.Error
		}
	}
	return errors.New(msg + d.agentHint(ctx) + "; remove again to wait for it")
}

// agentHint says, for a timeout message, whether a host agent is
// registered at all.
func (d *Driver) agentHint(ctx context.Context) string {
	kv, err := d.st.Get(ctx, schema.AgentKey(d.host))
	switch {
	case err != nil:
		return ""
	case kv == nil:
		return fmt.Sprintf(" (no host agent is registered for host %s: is `uspace-agent host --host %s` running?)", d.host, d.host)
	}
	return ""
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

// waitReady waits for a status that has applied rev and is ready, with
// the rule CNI ADD follows: a terminal error for that revision is the
// user's error at once; a transient one (retrying: SPDK unreachable or
// restarting) is waited through until the timeout, which then says the
// agent was still retrying.
func (d *Driver) waitReady(ctx context.Context, v *schema.Volume, rev int64) error {
	wctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var st *schema.VolumeStatus
	errTerminal := errors.New("terminal status error")
	_, err := d.st.WaitFor(wctx, d.statusKey(v.Name), rev, func(kv *store.KV) (bool, error) {
		if kv == nil {
			return false, nil
		}
		s, err := schema.DecodeAs[schema.VolumeStatus](kv.Value)
		if err != nil {
			return false, err
		}
		st = s
		if s.ObservedRevision < rev {
			return false, nil
		}
		if s.Error != "" && !s.Retrying {
			return false, errTerminal
		}
		return s.Ready, nil
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errTerminal):
		return d.agentError(v, st)
	case ctx.Err() != nil:
		return err
	case wctx.Err() != nil:
		msg := fmt.Sprintf("volume %s: the host agent of %s has not set up device %s within %v", v.Name, d.host, v.Device, d.timeout)
		if st != nil && st.Error != "" {
			state := "last status"
			if st.Retrying {
				state = "still retrying"
			}
			msg += fmt.Sprintf(" (%s, for revision %d: %s)", state, st.ObservedRevision, st.Error)
		}
		return errors.New(msg + d.agentHint(ctx))
	}
	return err
}

// agentError turns the agent's status error into what a Docker user needs
// to read. The agent's message already names the object and the ways out.
func (d *Driver) agentError(v *schema.Volume, st *schema.VolumeStatus) error {
	return fmt.Errorf("volume %s: host agent of %s could not set up device %s: %s", v.Name, d.host, v.Device, st.Error)
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
		if err := schema.ValidateVolumeName("volume name", r.Name); err != nil {
			return err
		}
		v, _, err := d.get(ctx, r.Name)
		if err != nil {
			return err
		}
		if v == nil {
			return errNotExist(r.Name)
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
		if err := schema.ValidateVolumeName("volume name", r.Name); err != nil {
			return err
		}
		v, kv, err := d.get(ctx, r.Name)
		if err != nil {
			return err
		}
		if v == nil {
			return errNotExist(r.Name)
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
