package main

import (
	"github.com/spf13/cobra"

	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

func authAddHostCmd(connect connectFunc, shared *store.Config) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "add-host HOST --out DIR",
		Short: "Create uspace-host-HOST and uspace-containers-HOST (roles and users) and write their credential files into DIR",
		Long: `Create the roles uspace-host-HOST and uspace-containers-HOST with exactly the
permissions of ARCHITECTURE.md's Security table (extra ones are revoked), users of the
same names holding only them, and write into DIR, for each identity:

  <identity>.password  the password, mode 0600
  <identity>.env       USPACE_ETCD_USER, USPACE_ETCD_PASSWORD_FILE (and the
                       endpoints and CA this command used), for EnvironmentFile=

A password file already in DIR is kept and the user's password set to it, so
running the command again changes nothing. Without one, a new random password
is generated (and an existing user's password replaced).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := args[0]
			if err := schema.ValidateHost("host", host); err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := connect(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			for _, r := range []rbac.Role{rbac.HostRole(host), rbac.ContainersRole(host)} {
				if err := ensureWithCredentials(ctx, st, cmd.OutOrStdout(), r, out, *shared); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory for the credential files (created 0700; required)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
