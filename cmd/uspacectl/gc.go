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
			// One transaction: both prefixes go together, and only while no
			// agent is registered (a live one would re-create what we delete
			// under it), however the race with a starting agent ends.
			agentKey := schema.AgentKey(host)
			var cmps []clientv3.Cmp
			if !force {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(agentKey), "=", 0))
			}
			prefixes := []string{schema.HostPrefix(host), schema.StatusHostPrefix(host)}
			var dels []clientv3.Op
			for _, prefix := range prefixes {
				dels = append(dels, clientv3.OpDelete(prefix, clientv3.WithPrefix()))
			}
			resp, err := st.Etcd().Txn(ctx).If(cmps...).Then(dels...).Else(clientv3.OpGet(agentKey)).Commit()
			if err != nil {
				return fmt.Errorf("remove host %s: %w", host, err)
			}
			if !resp.Succeeded {
				lease := resp.Responses[0].GetResponseRange().Kvs[0].Lease
				return fmt.Errorf("host %s has a registered agent (lease %x); stop it first or pass --force", host, lease)
			}
			var n int64
			for _, r := range resp.Responses {
				n += r.GetResponseDeleteRange().Deleted
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
