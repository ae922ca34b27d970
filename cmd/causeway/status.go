package main

import (
	"context"

	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/spf13/cobra"
)

func newStatusCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a federator's state: etcd reachability, catalog revision, staleness, sync, counts, leader",
		Example: `  causeway status --state-file /tmp/causeway.json --cluster west
  CAUSEWAY_FEDERATOR=10.0.0.5:7443 causeway status -o json`,
		Args: cobra.NoArgs,
	}
	a := addAdminFlags(cmd, g)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return a.run(cmd, func(ctx context.Context, c *cli.Client) (cli.Tabular, error) { return c.Status(ctx) })
	}
	return cmd
}
