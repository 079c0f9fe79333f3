package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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

// existing validates a volume name and reads its intent, which must exist.
func (d *Driver) existing(ctx context.Context, name string) (*schema.Volume, *store.KV, error) {
	if err := schema.ValidateVolumeName("volume name", name); err != nil {
		return nil, nil, err
	}
	v, kv, err := d.get(ctx, name)
	if err == nil && v == nil {
		err = errNotExist(name)
	}
	return v, kv, err
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
