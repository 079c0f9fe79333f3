package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/store"
)

func authInitCmd(connect connectFunc, shared *store.Config) *cobra.Command {
	var out, rootPasswordFile string
	var enable, rootCertOnly bool
	cmd := &cobra.Command{
		Use:   "init --out DIR [--enable] [--root-password-file FILE | --root-cert-only]",
		Short: "Create the uspace-admin role and user (credentials into DIR), etcd's root user if missing, and optionally enable auth",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rootPasswordFile != "" && rootCertOnly {
				return errors.New("--root-password-file and --root-cert-only exclude each other")
			}
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			st, err := connect(ctx)
			if err != nil {
				return err
			}
			defer st.Close()

			enabled, err := rbac.AuthEnabled(ctx, st)
			if err != nil {
				return err
			}
			hasRoot, err := rbac.UserExists(ctx, st, rbac.RootUser)
			if err != nil {
				return err
			}
			switch {
			case hasRoot || rootPasswordFile != "" || rootCertOnly:
				var password string
				if rootPasswordFile != "" {
					if password, err = readSecretFile(rootPasswordFile); err != nil {
						return err
					}
				}
				done, err := rbac.EnsureRoot(ctx, st, password)
				report(w, done)
				if err != nil {
					return err
				}
			case enable:
				return errors.New("etcd has no root user, which it needs before auth can be enabled: " +
					"give --root-password-file FILE (mode 0600) to create it with that password, " +
					"or --root-cert-only to create it for client-certificate login (CN=root) only")
			default:
				fmt.Fprintln(w, "etcd has no root user yet: create it (--root-password-file or --root-cert-only) before enabling auth")
			}

			if err := ensureWithCredentials(ctx, st, w, rbac.AdminRole(), out, *shared); err != nil {
				return err
			}
			switch {
			case enabled:
				fmt.Fprintln(w, "etcd auth is enabled")
			case enable:
				if err := rbac.EnableAuth(ctx, st); err != nil {
					return err
				}
				fmt.Fprintln(w, "enabled etcd auth")
			default:
				fmt.Fprintln(w, "etcd auth is NOT enabled: anyone reaching etcd can do anything (run again with --enable)")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory for uspace-admin's credential files (created 0700; required)")
	cmd.Flags().BoolVar(&enable, "enable", false, "enable etcd auth once the root and uspace-admin users exist")
	cmd.Flags().StringVar(&rootPasswordFile, "root-password-file", "", "create etcd's root user, if missing, with the password in this file (mode 0600)")
	cmd.Flags().BoolVar(&rootCertOnly, "root-cert-only", false, "create etcd's root user, if missing, without a password: it then logs in only with a client certificate with CN=root")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
