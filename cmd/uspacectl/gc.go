package main

import (
	"fmt"

	"github.com/spf13/cobra"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/schema"
)

func gcCmd(connect connectFunc) *cobra.Command {
	var host string
	var force bool
	cmd := &cobra.Command{
		Use:   "gc --host H",
		Short: "Remove every intent and status of a host that is gone",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := schema.ValidateHost("--host", host); err != nil {
				return err
			}
			st, err := connect(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ctx := cmd.Context()
			// A live agent would re-create what we delete under it.
			if agent, err := st.Get(ctx, schema.AgentKey(host)); err != nil {
				return err
			} else if agent != nil && !force {
				return fmt.Errorf("host %s has a registered agent (lease %x); stop it first or pass --force", host, agent.Lease)
			}
			var n int64
			for _, prefix := range []string{schema.HostPrefix(host), schema.StatusHostPrefix(host)} {
				resp, err := st.Etcd().Delete(ctx, prefix, clientv3.WithPrefix())
				if err != nil {
					return fmt.Errorf("delete %s: %w", prefix, err)
				}
				n += resp.Deleted
			}
			fmt.Fprintf(cmd.OutOrStdout(), "host %s: removed %d keys\n", host, n)
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "the host to remove (required)")
	cmd.Flags().BoolVar(&force, "force", false, "remove even while the host's agent is registered")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}
