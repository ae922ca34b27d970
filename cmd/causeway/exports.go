package main

import (
	"context"

	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/spf13/cobra"
)

func newExportsCmd(g *globalFlags) *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "exports",
		Short: "List the exported services and, per exporting cluster, ports, type, readiness, routing and drain state",
		Example: `  causeway exports --state-file /tmp/causeway.json
  causeway exports -n demo -o json`,
		Args: cobra.NoArgs,
	}
	a := addAdminFlags(cmd, g)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "only services of this namespace (default: all)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return a.run(cmd, func(ctx context.Context, c *cli.Client) (cli.Tabular, error) { return c.Exports(ctx, namespace) })
	}
	return cmd
}
