package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/uspace-io/uspace/agent/container"
	"github.com/uspace-io/uspace/agent/endpoint"
	"github.com/uspace-io/uspace/agent/host"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:           "uspace-agent",
		Short:         "Converge VPP and SPDK to the intents uspace keeps in etcd",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(hostCmd(), containerCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "uspace-agent:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

// defaultMemoryLimitMiB is the host agent's default soft memory limit. The
// agent's live heap is about 18-24 MB with 10,000 interfaces; without a
// limit the Go GC lets the heap grow to twice that before collecting, and
// the process's RSS (which also holds ~13 MiB of binary and runtime) passes
// 64 MiB. With the limit the GC collects sooner as the total nears it. It
// is a soft limit: a bigger live heap (roughly beyond 15,000 interfaces) is
// not refused, it only makes the GC run more often (at most about half the
// CPU), so such hosts should raise it. The agent applies it once its start-up
// burst is over (host.Config.OnStartupDone), so the burst is not slowed by a
// GC chasing a limit the steady state is meant to keep.
const defaultMemoryLimitMiB = 40

// memoryLimit is the limit in bytes to apply, 0 for none: GOMEMLIMIT, which
// the Go runtime reads itself, wins.
func memoryLimit(mib int64) int64 {
	if os.Getenv("GOMEMLIMIT") != "" || mib <= 0 {
		return 0
	}
	return mib << 20
}

// afterStartup is the host agent's OnStartupDone: the start-up burst
// leaves the heap far above what the agent keeps, so return it to the OS
// now rather than whenever the scavenger gets to it, and from now on hold
// the steady state to limit (bytes, 0: the runtime's own).
func afterStartup(limit int64) func() {
	return func() {
		if limit > 0 {
			debug.SetMemoryLimit(limit)
		}
		debug.FreeOSMemory()
	}
}

func logger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("USPACE_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// signalContext ends on SIGTERM or SIGINT, the way systemd and Docker stop
// a daemon.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

func hostCmd() *cobra.Command {
	hostname, _ := os.Hostname()
	var (
		etcd         store.Config
		cfg          = host.Config{Version: version}
		memLimit     int64
		embedded     embeddedConfig
		decommission bool
	)
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Run the host agent: host VPP interfaces and bridge domains, SPDK vhost-user volumes",
		Long: `Runs the host agent. Stopped (SIGTERM) or killed, it leaves its
registration lease, recorded in --state-dir, to the next agent: one started
within --lease-ttl resumes it, so other hosts keep their tunnels to this one.
--decommission, with the agent stopped, revokes that lease instead: the
host's registration and network memberships go at once.`,
		RunE: func(cmd *cobra.Command, _ []string) (exitErr error) {
			if err := schema.ValidateHost("--host", cfg.Host); err != nil {
				return err
			}
			for i, r := range cfg.VolumeRoots {
				// A trailing slash, as the seed README writes roots, is fine.
				cfg.VolumeRoots[i] = filepath.Clean(r)
				if err := schema.ValidateDir("--volume-root", cfg.VolumeRoots[i]); err != nil {
					return err
				}
			}
			log := logger().With("component", "host-agent")
			ctx, stop := signalContext()
			defer stop()
			if embedded.Dir != "" {
				child, err := startEmbedded(ctx, &embedded, &etcd, log)
				if err != nil {
					return err
				}
				var stopEtcd func(error) error
				ctx, stopEtcd = child.Supervise(ctx, log)
				defer func() { exitErr = stopEtcd(exitErr) }()
			}
			cfg.OnStartupDone = afterStartup(memoryLimit(memLimit))
			st, err := connect(ctx, etcd)
			if err != nil {
				return err
			}
			defer st.Close()
			if decommission {
				msg, err := host.Decommission(ctx, st, cfg.Host, cfg.StateDir)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), msg)
				return nil
			}
			return host.New(cfg, st, log).Run(ctx)
		},
	}
	etcd.BindFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&cfg.Host, "host", envOr("USPACE_HOST", hostname), "this host's name in etcd (env USPACE_HOST)")
	f.StringVar(&cfg.VPPSocket, "vpp-socket", envOr("USPACE_VPP_SOCKET", "/run/vpp/api.sock"), "VPP binary API socket (env USPACE_VPP_SOCKET)")
	f.StringVar(&cfg.SPDKSocket, "spdk-socket", envOr("USPACE_SPDK_SOCKET", "/var/tmp/spdk.sock"), "SPDK JSON-RPC socket (env USPACE_SPDK_SOCKET)")
	f.StringVar(&cfg.SharedDir, "shared-dir", envOr("USPACE_SHARED_DIR", "/var/run/vpp/cni/shared"), "directory of the memif/vhost-user sockets shared with containers")
	f.StringSliceVar(&cfg.VolumeRoots, "volume-root", strings.Split(envOr("USPACE_VOLUME_ROOT", "/var/run/kata-containers/vhost-user"), ","),
		"vhost-user volume roots (block/sockets, block/devices): the volume driver's -path and every -o path root in use, repeatable or comma-separated; the agent creates and deletes volume files only inside them (env USPACE_VOLUME_ROOT)")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", envOr("USPACE_METRICS_ADDR", "127.0.0.1:9560"), "listen address for /metrics, /healthz and /readyz (empty: off)")
	f.StringVar(&cfg.Underlay, "underlay-ip", os.Getenv("USPACE_UNDERLAY_IP"),
		"this host's VXLAN tunnel end point, an address with prefix length (e.g. 192.168.77.1/24) the agent puts on the uplink; with --uplink, networks with a VNI span hosts (env USPACE_UNDERLAY_IP)")
	f.StringVar(&cfg.Uplink, "uplink", os.Getenv("USPACE_UPLINK"),
		"the Linux interface that reaches the other hosts' underlay addresses: the agent makes an af_packet interface on it in VPP (env USPACE_UPLINK)")
	f.StringVar(&cfg.UplinkNetns, "uplink-netns", os.Getenv("USPACE_UPLINK_NETNS"),
		"the network namespace (a path, e.g. /var/run/netns/vpp) where VPP sees --uplink, when it is not the agent's: the agent reads the uplink's MTU there (env USPACE_UPLINK_NETNS)")
	f.BoolVar(&cfg.ContainerEndpoints, "container-endpoints", os.Getenv("USPACE_CONTAINER_ENDPOINTS") != "false",
		"serve every container with a network namespace its own etcd endpoint there ("+endpoint.URL+"), limited to its intents and statuses; container agents then need no etcd address or credential (env USPACE_CONTAINER_ENDPOINTS=false: off)")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", 10*time.Second, "TTL of the agent's registration lease: how long a dead agent looks alive, and how long a restart may take without other hosts noticing")
	f.StringVar(&cfg.StateDir, "state-dir", envOr("USPACE_STATE_DIR", "/var/lib/uspace"),
		"where the agent records its registration lease for the next agent to resume (<host>.lease, <host>.lock; env USPACE_STATE_DIR)")
	f.BoolVar(&decommission, "decommission", false,
		"take this host out of service instead of running the agent (stop it first): revoke the lease recorded in --state-dir, so that the host's registration and network memberships go at once")
	f.Int64Var(&memLimit, "memory-limit-mib", envInt("USPACE_MEMORY_LIMIT_MIB", defaultMemoryLimitMiB),
		"soft memory limit of the Go runtime in MiB, 0: none; GOMEMLIMIT overrides it (env USPACE_MEMORY_LIMIT_MIB)")
	f.StringVar(&embedded.Dir, "embedded-etcd", os.Getenv("USPACE_EMBEDDED_ETCD"),
		"single-host set-up: run a single-member etcd (uspace-etcd, a child process looked for beside uspace-agent, then on $PATH) with its data in this directory, serving clients on the first --etcd-endpoints URL (env USPACE_EMBEDDED_ETCD)")
	f.StringVar(&embedded.PeerURL, "embedded-etcd-peer-url", "http://127.0.0.1:2380", "the embedded etcd's raft URL (a single member has no peers, but etcd needs one)")
	return cmd
}

func connect(ctx context.Context, cfg store.Config) (*store.Client, error) {
	dial, cancel := context.WithTimeout(ctx, cfg.DialTimeout+5*time.Second)
	defer cancel()
	return store.Connect(dial, cfg)
}

// awaitEndpoint connects to the host agent's endpoint in this network
// namespace, waiting for it: the host agent opens it once it sees the CNI
// ADD's meta, which may be after the container agent starts, and re-opens
// it when it restarts.
func awaitEndpoint(log *slog.Logger) func(context.Context, store.Config) (*store.Client, error) {
	return func(ctx context.Context, cfg store.Config) (*store.Client, error) {
		b := store.NewBackoff(100*time.Millisecond, 2*time.Second)
		for {
			st, err := connect(ctx, cfg)
			if err == nil || ctx.Err() != nil {
				return st, err
			}
			log.Warn("no etcd endpoint of the host agent in this network namespace yet; waiting", "endpoint", endpoint.URL, "err", err)
			select {
			case <-time.After(b.NextBackOff()):
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting for the etcd endpoint %s: %w", endpoint.URL, ctx.Err())
			}
		}
	}
}

func containerCmd() *cobra.Command {
	// Docker sets both the kernel hostname and $HOSTNAME in a container.
	hostname := os.Getenv("HOSTNAME")
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	var (
		etcd store.Config
		cfg  = container.Config{Identity: container.Identity{
			CNIContainerID: os.Getenv("CNI_CONTAINERID"),
			PodNamespace:   os.Getenv("POD_NAMESPACE"),
			PodName:        os.Getenv("POD_NAME"),
			ProcRoot:       "/proc",
			Hostname:       hostname,
		}}
	)
	cmd := &cobra.Command{
		Use:   "container",
		Short: "Run the container agent: converge this container's VPP to its intents",
		Long: `Runs beside the container's own VPP. The container is --container-id
(USPACE_CONTAINER_ID) when given; otherwise the first of these that matches
a container with intents on this host: CNI_CONTAINERID, the Kubernetes pod
(POD_NAMESPACE/POD_NAME), every Docker container ID in /proc/self/cgroup and
/proc/self/mountinfo (with --net=container:<sandbox> the sandbox's ID, which
the CNI ADD used, is among them), the hostname as a container ID prefix.
Each attempt is logged at debug level (USPACE_LOG_LEVEL=debug), the winner
at info. Without a match the agent waits for a CNI ADD and says every 30 s
what it tried; with --once it fails at once saying so (and when the given
container has no interface intents). It exits non-zero
when etcd stops accepting its identity (checked every --identity-check-interval,
one read; an open watch goes on after its user is deleted).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := schema.ValidateHost("--host", cfg.Host); err != nil {
				return err
			}
			log := logger().With("component", "container-agent")
			ctx, stop := signalContext()
			defer stop()
			if cfg.Once {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, container.OnceTimeout)
				defer cancel()
			}
			connectFn := connect
			if slices.Equal(etcd.Endpoints, []string{endpoint.URL}) {
				cfg.Identity.Endpoint = true
				connectFn = awaitEndpoint(log)
			}
			st, err := connectFn(ctx, etcd)
			if err != nil {
				return err
			}
			defer st.Close()
			return container.New(cfg, st, log).Run(ctx)
		},
	}
	etcd.BindFlagsTo(cmd.Flags(), endpoint.URL)
	f := cmd.Flags()
	f.StringVar(&cfg.Host, "host", os.Getenv("USPACE_HOST"), "the host this container runs on (env USPACE_HOST; Kubernetes: spec.nodeName)")
	f.StringVar(&cfg.Identity.ContainerID, "container-id", os.Getenv("USPACE_CONTAINER_ID"), "this container's ID as the CNI plugin saw it (env USPACE_CONTAINER_ID)")
	f.StringVar(&cfg.VPPSocket, "vpp-socket", envOr("USPACE_VPP_SOCKET", "/run/vpp/api.sock"), "the container VPP's API socket (env USPACE_VPP_SOCKET)")
	f.StringVar(&cfg.SharedDir, "shared-dir", envOr("USPACE_SHARED_DIR", "/var/run/vpp/cni/shared"), "where the socket files shared with the host appear in this container (vhost-user, and memif with uspace.memifSocket \"file\")")
	f.StringVar(&cfg.DeviceInfoDir, "device-info-dir", os.Getenv("USPACE_DEVICE_INFO_DIR"),
		"keep one NPWG device-info file per interface here, <interface>.json, for an application sharing the directory (env USPACE_DEVICE_INFO_DIR; empty: none)")
	f.BoolVar(&cfg.Once, "once", false, "apply the current intents and exit (init containers, scripts)")
	f.DurationVar(&cfg.ProbeInterval, "identity-check-interval", container.DefaultProbeInterval,
		"how often to check, with one read, that etcd still accepts this agent's identity")
	return cmd
}
