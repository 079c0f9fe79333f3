package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/schema"
)

// defaultQuiet is how long gc watches a host for signs of a live agent
// before removing it: longer than a live agent takes to put a deleted
// registration back (at once, under its lease) and to write a status.
const defaultQuiet = 3 * time.Second

func gcCmd(connect connectFunc) *cobra.Command {
	var (
		host  string
		force bool
		quiet time.Duration
	)
	cmd := &cobra.Command{
		Use:   "gc --host H",
		Short: "Remove every intent and status of a host that is gone",
		Long: `Removes every intent and status of a host whose agent is gone. It refuses
while there is any evidence of a live agent: its registration key, or a
write by the agent (a re-registration, a status) while gc watches the host
for --quiet; and the removal itself is one transaction that only applies if
neither the registration nor any status changed since.`,
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
			agentKey, statusPrefix := schema.AgentKey(host), schema.StatusHostPrefix(host)
			var cmps []clientv3.Cmp
			if !force {
				rev, err := quietSince(ctx, st.Etcd(), host, quiet)
				if err != nil {
					return err
				}
				// A live agent would re-create what we delete under it:
				// both prefixes go together, and only if the agent stayed
				// silent up to this transaction.
				cmps = append(cmps,
					clientv3.Compare(clientv3.CreateRevision(agentKey), "=", 0),
					clientv3.Compare(clientv3.ModRevision(statusPrefix), "<", rev+1).WithPrefix())
			}
			prefixes := []string{schema.HostPrefix(host), statusPrefix}
			var dels []clientv3.Op
			for _, prefix := range prefixes {
				dels = append(dels, clientv3.OpDelete(prefix, clientv3.WithPrefix()))
			}
			resp, err := st.Etcd().Txn(ctx).If(cmps...).Then(dels...).Else(clientv3.OpGet(agentKey)).Commit()
			if err != nil {
				return fmt.Errorf("remove host %s: %w", host, err)
			}
			if !resp.Succeeded {
				if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
					return fmt.Errorf("host %s has a registered agent (lease %x); stop it first (a stopped agent's registration lasts until its lease expires, or `uspace-agent host --decommission` on the host ends it at once) or pass --force", host, kvs[0].Lease)
				}
				return fmt.Errorf("host %s: a status was written while gc ran, so its agent is live; stop it first or pass --force", host)
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
	cmd.Flags().BoolVar(&force, "force", false, "remove even while the host's agent is registered or writing")
	cmd.Flags().DurationVar(&quiet, "quiet", defaultQuiet, "how long the host must show no agent activity before it is removed")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

// quietSince checks that host has no registered agent and that nothing
// re-registers it or writes one of its statuses for quiet, and returns
// the revision the watch started from.
func quietSince(ctx context.Context, cli *clientv3.Client, host string, quiet time.Duration) (int64, error) {
	agentKey := schema.AgentKey(host)
	resp, err := cli.Get(ctx, agentKey)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", agentKey, err)
	}
	if len(resp.Kvs) > 0 {
		return 0, fmt.Errorf("host %s has a registered agent (lease %x); stop it first or pass --force", host, resp.Kvs[0].Lease)
	}
	rev := resp.Header.Revision
	wctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), quiet)
	defer cancel()
	from := clientv3.WithRev(rev + 1)
	agentW := cli.Watch(wctx, agentKey, from)
	statusW := cli.Watch(wctx, schema.StatusHostPrefix(host), clientv3.WithPrefix(), from)
	for {
		var (
			wr clientv3.WatchResponse
			ok bool
		)
		select {
		case wr, ok = <-agentW:
		case wr, ok = <-statusW:
		}
		if !ok || wctx.Err() != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return rev, nil
		}
		if err := wr.Err(); err != nil && wctx.Err() == nil {
			return 0, fmt.Errorf("watch host %s for a live agent: %w", host, err)
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut {
				return 0, fmt.Errorf("host %s's agent is live: it wrote %s while gc watched (for %v); stop it first or pass --force", host, ev.Kv.Key, quiet)
			}
		}
	}
}
