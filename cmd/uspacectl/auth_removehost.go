package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/schema"
)

func authRemoveHostCmd(connect connectFunc) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "remove-host HOST [--out DIR]",
		Short: "Delete the users and roles uspace-host-HOST and uspace-containers-HOST (and their credential files in DIR)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := args[0]
			if err := schema.ValidateHost("host", host); err != nil {
				return err
			}
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			st, err := connect(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			for _, name := range []string{rbac.HostIdentity(host), rbac.ContainersIdentity(host)} {
				done, err := rbac.RemoveIdentity(ctx, st, name)
				report(w, done)
				if err != nil {
					return err
				}
				if len(done) == 0 {
					fmt.Fprintf(w, "%s: no such user or role\n", name)
				}
				if out == "" {
					continue
				}
				for _, f := range credentialFiles(out, name) {
					switch err := os.Remove(f); {
					case err == nil:
						fmt.Fprintf(w, "removed %s\n", f)
					case !errors.Is(err, os.ErrNotExist):
						return err
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "also remove the host's credential files from this directory")
	return cmd
}
