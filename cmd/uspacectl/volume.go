package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/uspace-io/uspace/volume"
)

// volumeCmd holds the operators' way out for volumes: a mount ID that stays
// recorded although no container uses the volume any more keeps `docker
// volume rm` refusing "still in use".
func volumeCmd(connect connectFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Administer Docker volumes of the uspace-volume driver",
	}
	var host string
	var all bool
	unmount := &cobra.Command{
		Use:   "unmount --host H VOLUME (ID... | --all)",
		Short: "Release mount IDs a volume still records although no container uses it",
		Long: `Releases mount IDs of a volume, as Docker's Unmount would. Use it when
'docker volume rm' refuses "still in use" although no container uses the
volume (docker ps -a --filter volume=VOLUME shows none): Docker sends no
Unmount after a Mount that failed, so a driver killed at the wrong moment
can leave an ID behind. The device itself is left as it is; remove the
volume afterwards with docker volume rm.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := connect(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			v, err := volume.ReleaseMounts(cmd.Context(), st, host, args[0], args[1:], all)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "volume %s on host %s: mounts [%s], mounting [%s]\n",
				v.Name, v.Host, strings.Join(v.Mounts, " "), strings.Join(v.Mounting, " "))
			return nil
		},
	}
	unmount.Flags().StringVar(&host, "host", "", "the host of the volume (the driver's --host; required)")
	unmount.Flags().BoolVar(&all, "all", false, "release every mount ID of the volume")
	_ = unmount.MarkFlagRequired("host")
	cmd.AddCommand(unmount)
	return cmd
}
