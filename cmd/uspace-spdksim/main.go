package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/uspace-io/uspace/integration/spdksim"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var (
		rpcSocket, vhostDir, controlSocket, stateDump, cpumask, logLevel string
		memLimit                                                         uint64
	)
	cmd := &cobra.Command{
		Use:   "uspace-spdksim",
		Short: "SPDK JSON-RPC (bdev_malloc + vhost) wire simulator standing in for spdk_tgt",
		Long: `uspace-spdksim listens on a unix socket and speaks SPDK's JSON-RPC exactly as
spdk_tgt v24.09 does for spdk_get_version, bdev_malloc_create/delete,
bdev_get_bdevs and the vhost blk/scsi controller methods, creating a real
listening vhost-user socket <vhost-dir>/<ctrlr> per controller.

Signals: SIGTERM/SIGINT clean stop (sockets removed); SIGHUP crash+restart
(state lost, controller sockets left stale); SIGUSR1 write --state-dump now.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			mask, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(cpumask), "0x"), 16, 64)
			if err != nil || mask == 0 {
				return fmt.Errorf("--cpumask %q: want a non-zero hex mask", cpumask)
			}
			err = run(log, rpcSocket, vhostDir, controlSocket, stateDump, mask, memLimit)
			if err != nil {
				log.Error("uspace-spdksim failed", "err", err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&rpcSocket, "rpc-socket", "r", "/var/tmp/spdk.sock", "JSON-RPC unix socket (spdk_tgt -r)")
	f.StringVarP(&vhostDir, "vhost-dir", "S", "", "directory for vhost controller sockets (spdk_tgt -S; default: current directory)")
	f.StringVar(&controlSocket, "control-socket", "", "unix socket for fault-injection commands (one JSON object per line); empty: none")
	f.StringVar(&stateDump, "state-dump", "", "write the simulator state as JSON to this file after every change and on exit")
	f.StringVarP(&cpumask, "cpumask", "m", "0x1", "application core mask (spdk_tgt -m)")
	f.Uint64Var(&memLimit, "mem-limit", spdksim.DefaultMemLimitBytes, "bytes available to malloc bdevs (default: what spdk_tgt -s 2048 gives them)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func run(log *slog.Logger, rpcSocket, vhostDir, controlSocket, stateDump string, mask, memLimit uint64) error {
	var sim *spdksim.Sim
	dump := func() {
		if stateDump == "" || sim == nil {
			return
		}
		if err := sim.DumpState(stateDump); err != nil {
			log.Warn("state dump failed", "path", stateDump, "err", err)
		}
	}
	// Signals are registered before the socket exists, so a supervisor that
	// waits for the socket can signal right away.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	dumpCh := make(chan struct{}, 1)
	s, err := spdksim.Start(spdksim.Options{
		RPCSocket:     rpcSocket,
		VhostDir:      vhostDir,
		CoreMask:      mask,
		MemLimitBytes: memLimit,
		Logger:        log,
		OnStateChange: func() {
			select {
			case dumpCh <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		return err
	}
	sim = s
	dump()
	var ctl *spdksim.ControlServer
	if controlSocket != "" {
		if ctl, err = sim.ServeControl(controlSocket); err != nil {
			sim.Close()
			return err
		}
		log.Info("control socket listening", "path", controlSocket)
	}
	for {
		select {
		case <-dumpCh:
			dump()
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				if err := sim.Restart(spdksim.RestartOptions{}); err != nil {
					log.Error("restart failed", "err", err)
				}
			case syscall.SIGUSR1:
				dump()
			default:
				log.Info("shutting down", "signal", sig.String())
				if ctl != nil {
					ctl.Close()
				}
				err := sim.Close()
				dump()
				return err
			}
		}
	}
}
