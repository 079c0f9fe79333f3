package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// row is one object with its desired and observed state side by side.
type row struct {
	Key      string          `json:"key"`
	Host     string          `json:"host"`
	Name     string          `json:"name"`
	Desired  json.RawMessage `json:"desired,omitempty"`
	Observed json.RawMessage `json:"observed,omitempty"`
	// Agrees is true when the status reports the intent's revision applied
	// without error.
	Agrees bool   `json:"agrees"`
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
}

var kinds = map[string]schema.KeyKind{
	"interfaces": schema.KindInterfaceKey,
	"volumes":    schema.KindVolumeKey,
	"containers": schema.KindContainerInterfaceKey,
	"hosts":      schema.KindAgentKey,
}

func getCmd(connect connectFunc) *cobra.Command {
	var host, output string
	cmd := &cobra.Command{
		Use:       "get hosts|interfaces|volumes|containers",
		Short:     "Show intents and statuses side by side: desired vs observed, and whether they agree",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"hosts", "interfaces", "volumes", "containers"},
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, ok := kinds[args[0]]
			if !ok {
				return fmt.Errorf("unknown resource %q: want hosts, interfaces, volumes or containers", args[0])
			}
			if host != "" {
				if err := schema.ValidateHost("--host", host); err != nil {
					return err
				}
			}
			if output != "table" && output != "json" {
				return fmt.Errorf("unknown output %q: want table or json", output)
			}
			st, err := connect(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			rows, err := collect(cmd, st, kind, host)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			return printTable(cmd.OutOrStdout(), kind, rows)
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "only this host")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func collect(cmd *cobra.Command, st *store.Client, kind schema.KeyKind, host string) ([]row, error) {
	ctx := cmd.Context()
	intentPrefix, statusPrefix := schema.HostsPrefix(), schema.StatusPrefix()
	if host != "" {
		intentPrefix, statusPrefix = schema.HostPrefix(host), schema.StatusHostPrefix(host)
	}
	intents, _, err := st.List(ctx, intentPrefix)
	if err != nil {
		return nil, err
	}
	statuses, _, err := st.List(ctx, statusPrefix)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*row{}
	for _, kv := range intents {
		k, err := schema.ParseKey(kv.Key)
		if err != nil || k.Kind != kind {
			continue
		}
		r := &row{Key: kv.Key, Host: k.Host, Name: nameOf(k), Desired: kv.Value}
		if kind == schema.KindAgentKey {
			r.Agrees, r.State = true, "registered"
		} else {
			r.State = "pending"
		}
		r.Detail = revisionDetail(kv)
		byKey[kv.Key] = r
	}
	for _, kv := range statuses {
		k, err := schema.ParseKey(kv.Key)
		if err != nil || k.Kind != kind {
			continue
		}
		ik := k.IntentOf().String()
		r, ok := byKey[ik]
		if !ok {
			r = &row{Key: ik, Host: k.Host, Name: nameOf(k), State: "orphan status", Detail: "intent deleted; agent has not cleaned up"}
			byKey[ik] = r
		}
		r.Observed = kv.Value
		judge(r, intents, ik)
	}
	rows := make([]row, 0, len(byKey))
	for _, r := range byKey {
		rows = append(rows, *r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	return rows, nil
}

func nameOf(k schema.Key) string {
	switch k.Kind {
	case schema.KindInterfaceKey, schema.KindContainerInterfaceKey:
		return k.Container + "/" + k.Interface
	case schema.KindVolumeKey:
		return k.Volume
	}
	return k.Host
}

func revisionDetail(kv store.KV) string { return fmt.Sprintf("intent rev %d", kv.ModRevision) }

// judge compares a status with its intent's revision.
func judge(r *row, intents []store.KV, intentKey string) {
	if r.Desired == nil {
		return
	}
	var rev int64
	for _, kv := range intents {
		if kv.Key == intentKey {
			rev = kv.ModRevision
		}
	}
	var st struct {
		ObservedRevision int64  `json:"observedRevision"`
		Ready            bool   `json:"ready"`
		Error            string `json:"error"`
		SwIfIndex        uint32 `json:"swIfIndex"`
		DevicePath       string `json:"devicePath"`
	}
	if err := json.Unmarshal(r.Observed, &st); err != nil {
		r.State, r.Detail = "unreadable status", err.Error()
		return
	}
	switch {
	case st.Error != "":
		r.State, r.Detail = "error", st.Error
	case st.ObservedRevision < rev:
		r.State, r.Detail = "converging", fmt.Sprintf("applied rev %d of %d", st.ObservedRevision, rev)
	case st.Ready:
		r.Agrees, r.State = true, "ready"
		switch {
		case st.SwIfIndex != 0:
			r.Detail = fmt.Sprintf("sw_if_index %d, rev %d", st.SwIfIndex, st.ObservedRevision)
		case st.DevicePath != "":
			r.Detail = fmt.Sprintf("%s, rev %d", st.DevicePath, st.ObservedRevision)
		default:
			r.Detail = fmt.Sprintf("rev %d", st.ObservedRevision)
		}
	}
}

func printTable(w io.Writer, kind schema.KeyKind, rows []row) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tNAME\tSTATE\tAGREES\tDETAIL")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", r.Host, r.Name, r.State, r.Agrees, strings.ReplaceAll(r.Detail, "\n", " "))
	}
	if len(rows) == 0 {
		fmt.Fprintf(tw, "(no %s)\n", kind)
	}
	return tw.Flush()
}
