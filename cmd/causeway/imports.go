package main

import (
	"context"

	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/spf13/cobra"
)

func newImportsCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "imports",
		Short: "List a cluster's imports: clusterset IPs, ports, type, exporting clusters",
		Example: `  causeway imports --cluster west --state-file /tmp/causeway.json
  causeway imports --cluster west --federator 10.0.0.5:7443 --cert admin.crt --key admin.key --ca ca.crt -o yaml`,
		Args: cobra.NoArgs,
	}
	a := addAdminFlags(cmd, g)
	cmd.PersistentFlags().Lookup("cluster").Usage =
		"the cluster whose imports to list (default: the answering federator's); with --state-file also the federator to ask"
	a.opts.ClusterIsTarget = true
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return a.run(cmd, func(ctx context.Context, c *cli.Client) (cli.Tabular, error) { return c.Imports(ctx, a.opts.Cluster) })
	}
	return cmd
}
