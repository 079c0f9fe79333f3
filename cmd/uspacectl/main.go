// Command uspacectl inspects and administers uspace's state in etcd.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

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
	connect := func(ctx context.Context) (*store.Client, error) {
		ctx, cancel := context.WithTimeout(ctx, etcd.DialTimeout+5*time.Second)
		defer cancel()
		return store.Connect(ctx, etcd)
	}
	root.AddCommand(getCmd(connect), gcCmd(connect), authCmd(connect, &etcd))
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "uspacectl:", err)
		os.Exit(1)
	}
}

type connectFunc func(context.Context) (*store.Client, error)
