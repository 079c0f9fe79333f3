package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
	"github.com/uspace-io/uspace/volume"
)

// DefaultName keeps `docker volume create -d vhostuser-docker-volume`
// working unchanged.
const DefaultName = "vhostuser-docker-volume"

// DefaultPluginDir is where Docker discovers plugin sockets.
const DefaultPluginDir = "/run/docker/plugins"

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

type options struct {
	root      string
	name      string
	pluginDir string
	host      string
	timeout   time.Duration
	logLevel  string
	version   bool
	etcd      store.Config
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "uspace-volume:", err)
		os.Exit(1)
	}
}

func flags(o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("uspace-volume", pflag.ContinueOnError)
	fs.StringVarP(&o.root, "path", "p", volume.DefaultRoot, "vhost-user root directory: sockets in <path>/block/sockets/, device nodes in <path>/block/devices/")
	fs.StringVar(&o.name, "name", DefaultName, "plugin name: Docker finds the plugin as <plugin-dir>/<name>.sock and users pass it to --driver")
	fs.StringVar(&o.pluginDir, "plugin-dir", DefaultPluginDir, "directory of the plugin socket")
	fs.StringVar(&o.host, "host", defaultHost(), "this host's name in etcd, the same as the host agent's --host (env USPACE_HOST; default the hostname)")
	fs.DurationVar(&o.timeout, "timeout", volume.DefaultTimeout, "how long Mount and Remove wait for the host agent")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	o.etcd.BindFlags(fs)
	fs.SortFlags = false
	return fs
}

func defaultHost() string {
	if h := os.Getenv("USPACE_HOST"); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// NormalizeArgs rewrites Go-style single-dash long flags (-path, -path=x,
// -version) into pflag's --path form, so the seed's command lines keep
// working. Shorthands and their attached values (-p, -p/dir) are left
// alone, as is everything after "--".
func NormalizeArgs(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && fs.Lookup(name) != nil {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "devel " + s.Value
			}
		}
		return bi.Main.Version
	}
	return "devel"
}

func run(args []string) error {
	var o options
	fs := flags(&o)
	if err := fs.Parse(NormalizeArgs(fs, args)); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.version {
		fmt.Println("uspace-volume", versionString())
		return nil
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	root, sock, err := checkOptions(o)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	if err := volume.PrepareRoot(root); err != nil {
		return err
	}
	st, err := store.Connect(ctx, o.etcd)
	if err != nil {
		return err
	}
	defer st.Close()

	// Requests run on their own context, so that a shutdown lets them
	// finish instead of failing them half-way.
	reqCtx, cancelReqs := context.WithCancel(context.Background())
	defer cancelReqs()
	drv, err := volume.New(reqCtx, st, volume.Config{Host: o.host, Root: root, Timeout: o.timeout, Log: log})
	if err != nil {
		return err
	}

	l, err := listen(sock)
	if err != nil {
		return err
	}
	log.Info("serving Docker volume plugin", "socket", sock, "host", o.host, "path", root,
		"etcd", strings.Join(o.etcd.Endpoints, ","), "version", versionString())

	served := make(chan error, 1)
	go func() { served <- drv.Handler().Serve(l) }()
	select {
	case err := <-served:
		l.Close()
		return fmt.Errorf("serving %s: %w", sock, err)
	case <-ctx.Done():
	}
	// Closing the listener removes the socket, so Docker stops sending;
	// requests already running get to finish.
	log.Info("shutting down", "socket", sock)
	l.Close()
	dctx, cancel := context.WithTimeout(context.Background(), o.timeout+15*time.Second)
	defer cancel()
	if err := drv.Drain(dctx); err != nil {
		log.Warn("shutdown", "error", err)
	}
	return nil
}

// checkOptions validates the options that name files: the vhost-user
// root and the plugin socket.
func checkOptions(o options) (root, sock string, err error) {
	root, err = volume.CleanRoot(o.root)
	if err != nil {
		return "", "", err
	}
	if err := schema.ValidateHost("host", o.host); err != nil {
		return "", "", fmt.Errorf("--host: %w", err)
	}
	if o.name == "" || strings.ContainsAny(o.name, "/") {
		return "", "", fmt.Errorf("--name %q: must be a plain name (the socket is <plugin-dir>/<name>.sock)", o.name)
	}
	sock = filepath.Join(o.pluginDir, o.name+".sock")
	if len(sock) > schema.MaxSocketPath {
		return "", "", fmt.Errorf("plugin socket %s is %d bytes, a unix socket path holds at most %d", sock, len(sock), schema.MaxSocketPath)
	}
	return root, sock, nil
}

// listen creates the plugin socket, replacing a stale one left by a killed
// process but refusing to take over one another process still serves.
func listen(sock string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		return nil, fmt.Errorf("creating plugin directory: %w", err)
	}
	if _, err := os.Lstat(sock); err == nil {
		if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("plugin socket %s is served by another process: stop it, or choose another --name", sock)
		}
		if err := os.Remove(sock); err != nil {
			return nil, fmt.Errorf("removing stale plugin socket: %w", err)
		}
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("listening on plugin socket: %w", err)
	}
	// Only root (the Docker daemon) may talk to the plugin, as the seed's
	// socket owned by root's group.
	if err := os.Chmod(sock, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("plugin socket: %w", err)
	}
	return l, nil
}
