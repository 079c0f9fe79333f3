package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/uspace-io/uspace/integration/vppsim"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

type options struct {
	socket     string
	runtimeDir string
	control    string
	stateDump  string
	version    string
	logLevel   string
	exclude    []string
}

func newCommand() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "uspace-vppsim",
		Short: "Simulate VPP's binary API socket (GoVPP socket clients cannot tell the difference)",
		Long: `uspace-vppsim listens where VPP's binary API socket would be and speaks the
socket protocol GoVPP's socketclient uses: the sockclnt_create handshake with
a message table, binapi messages encoded with GoVPP's own types, dumps closed
by control_ping_reply. Behind it sits a dataplane state machine (memif,
vhost-user, bridge domains, interface settings, addresses, routes) that
creates the socket files a real VPP would create.

Signals:
  SIGTERM, SIGINT  shut down cleanly: remove the API socket, the control
                   socket and the socket files the simulated dataplane made.
  SIGUSR1          write the state snapshot (JSON) to --state-dump.
  SIGHUP           restart with empty state, like a VPP crash and restart.

Control socket (--control): one JSON object per line each way, e.g.
  {"op":"snapshot"}
  {"op":"messages"}
  {"op":"fail","msg":"memif_create_v2","count":1,"retval":-68}
  {"op":"latency","msg":"","latency":"200ms"}     ("" = every message)
  {"op":"clear-faults"}
  {"op":"drop"}                                    (close client connections)
  {"op":"restart"} | {"op":"stop"} | {"op":"start"}
Answers: {"ok":true,...} or {"ok":false,"error":"..."}; "snapshot" carries
"state", "messages" the message table, "drop" the number dropped.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := run(cmd.Context(), o, cmd.ErrOrStderr())
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "uspace-vppsim:", err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.socket, "socket", vppsim.DefaultSocket, "VPP API socket to listen on")
	f.StringVar(&o.runtimeDir, "runtime-dir", vppsim.DefaultRuntimeDir, "VPP run-time directory (default memif socket, relative memif socket names)")
	f.StringVar(&o.control, "control", "", "unix socket for the JSON control protocol (empty: none)")
	f.StringVar(&o.stateDump, "state-dump", "-", `where SIGUSR1 writes the state JSON ("-" = stdout); a file is replaced atomically`)
	f.StringVar(&o.version, "vpp-version", vppsim.DefaultVersion, "version reported by show_version")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringSliceVar(&o.exclude, "exclude", nil, `messages ("name" or "name_crc") left out of the message table, to look like an incompatible VPP`)
	return cmd
}

func run(ctx context.Context, o options, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	sim, err := vppsim.Start(vppsim.Options{
		Socket:     o.socket,
		RuntimeDir: o.runtimeDir,
		Version:    o.version,
		Exclude:    o.exclude,
		Logger:     log,
	})
	if err != nil {
		return err
	}
	defer sim.Close()

	if o.control != "" {
		cs, err := sim.ListenControl(o.control)
		if err != nil {
			return err
		}
		defer cs.Close()
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGHUP)
	defer signal.Stop(sigs)

	log.Info("uspace-vppsim ready", "socket", o.socket, "control", o.control, "pid", os.Getpid())
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			return nil
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR1:
				if err := dumpState(sim.Snapshot(), o.stateDump); err != nil {
					log.Error("state dump", "err", err)
				}
			case syscall.SIGHUP:
				log.Info("restarting with empty state")
				if err := sim.Restart(); err != nil {
					log.Error("restart", "err", err)
				}
			}
		}
	}
}

func dumpState(st vppsim.State, path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" || path == "" {
		_, err = os.Stdout.Write(b)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vppsim-state-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
