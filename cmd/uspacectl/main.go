package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/uspace-io/uspace/store"
)

func main() {
	var etcd store.Config
	root := &cobra.Command{
		Use:           "uspacectl",
		Short:         "Inspect and administer uspace's intents and statuses in etcd",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	etcd.BindFlags(root.PersistentFlags())
	// etcdctl's spelling, for the operators who type it out of habit.
	root.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "endpoints" {
			name = "etcd-endpoints"
		}
		return pflag.NormalizedName(name)
	})
	connect := func(ctx context.Context) (*store.Client, error) {
		ctx, cancel := context.WithTimeout(ctx, etcd.DialTimeout+5*time.Second)
		defer cancel()
		return store.Connect(ctx, etcd)
	}
	root.AddCommand(getCmd(connect), gcCmd(connect), authCmd(connect, &etcd), volumeCmd(connect))
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "uspacectl:", err)
		os.Exit(1)
	}
}

type connectFunc func(context.Context) (*store.Client, error)
