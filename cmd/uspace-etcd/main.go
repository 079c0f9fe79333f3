package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/uspace-io/uspace/store/embedetcd"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "uspace-etcd:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	var (
		cfg        embedetcd.Config
		readyFD    int
		lifelineFD int
	)
	cmd := &cobra.Command{
		Use:   "uspace-etcd",
		Short: "Run a single-member etcd on loopback: the store of `uspace-agent host --embedded-etcd`",
		Long: `Runs a single-member etcd with its data in --data-dir, serving clients on
--client-url, until SIGTERM or SIGINT, or until its --lifeline-fd reaches end
of file. uspace-agent host --embedded-etcd starts it as its child; it is
looked for beside uspace-agent, then on $PATH.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "embedded-etcd")
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if lifelineFD >= 0 {
				ctx = untilEOF(ctx, os.NewFile(uintptr(lifelineFD), "lifeline"), log)
			}
			return run(ctx, cfg, readyFD, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "data-dir", "", "directory of etcd's data; a restart on the same directory keeps it (required)")
	f.StringVar(&cfg.ClientURL, "client-url", "http://127.0.0.1:2379", "where clients connect; port 0 picks a free one, which --ready-fd reports")
	f.StringVar(&cfg.PeerURL, "peer-url", "http://127.0.0.1:2380", "etcd's raft URL (a single member has no peers, but etcd needs one)")
	f.IntVar(&readyFD, "ready-fd", -1, "an inherited file descriptor to write the client endpoints to, one line, once etcd serves (-1: none)")
	f.IntVar(&lifelineFD, "lifeline-fd", -1, "an inherited file descriptor whose end of file stops etcd, as SIGTERM does: the parent's end of a pipe (-1: none)")
	return cmd
}

// untilEOF returns a context that also ends when lifeline reaches end of
// file: the kernel closes the parent's end when the parent dies however it
// dies, so the child never outlives it.
func untilEOF(ctx context.Context, lifeline *os.File, log *slog.Logger) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		if _, err := io.Copy(io.Discard, lifeline); err != nil {
			log.Error("reading the lifeline: stopping", "err", err)
			return
		}
		log.Info("parent gone (lifeline closed): stopping")
	}()
	return ctx
}

// run serves etcd until ctx ends or etcd fails.
func run(ctx context.Context, cfg embedetcd.Config, readyFD int, log *slog.Logger) error {
	e, err := embedetcd.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	log.Info("etcd serving", "endpoints", e.Endpoints(), "dir", cfg.Dir, "pid", os.Getpid())
	if readyFD >= 0 {
		ready := os.NewFile(uintptr(readyFD), "ready")
		_, err := fmt.Fprintln(ready, strings.Join(e.Endpoints(), ","))
		if cerr := ready.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("reporting readiness on fd %d: %w", readyFD, err)
		}
	}
	select {
	case <-ctx.Done():
		log.Info("stopping etcd", "dir", cfg.Dir)
		return nil
	case err := <-e.Err():
		return fmt.Errorf("etcd in %s failed: %w", cfg.Dir, err)
	}
}
