package main

import (
	"context"

	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/spf13/cobra"
)

func newDrainCmd(g *globalFlags) *cobra.Command {
	var service, reason string
	cmd := &cobra.Command{
		Use:   "drain CLUSTER",
		Short: "Take a cluster, or one service of it, out of rotation",
		Long: `Take a cluster, or with --service one service of it, out of rotation: gateways
and DNS shims stop choosing it for new connections (open ones are not cut).
Draining what is already drained changes nothing (the first reason and time
stay). The cluster must be a member, and export the service when one is given.
A federator drains only its own cluster: another cluster is drained directly
in etcd by the clusterset admin (--etcd and the clusterset-admin etcd
credentials; under causeway dev, the state file's).`,
		Example: `  causeway drain east --service demo/echo --state-file /tmp/causeway.json
  causeway drain east --reason "kernel upgrade"
  causeway drain west --etcd https://etcd.example:2379 --etcd-ca etcd-ca.crt \
    --etcd-username causeway-clusterset-admin --etcd-password-file admin.password`,
		Args: cobra.ExactArgs(1),
	}
	a := addAdminFlags(cmd, g)
	eo := addEtcdAdminFlags(cmd, crossClusterEtcdUsage)
	cmd.Flags().StringVar(&service, "service", "", "drain only this service, as NAMESPACE/NAME")
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept in the drain record")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return a.runAbout(cmd, eo, args[0], func(ctx context.Context, c *cli.Client) (cli.Tabular, error) {
			return c.Drain(ctx, args[0], service, reason)
		}, func(ctx context.Context, e *cli.EtcdAdmin) (cli.Tabular, error) {
			return e.Drain(ctx, args[0], service, reason)
		})
	}
	return cmd
}

func newUndrainCmd(g *globalFlags) *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:   "undrain CLUSTER",
		Short: "Put a drained cluster, or one service of it, back into rotation",
		Long: `Put a cluster, or with --service one service of it, back into rotation by
deleting its drain record. Undraining what is not drained changes nothing.
A service drain and a whole-cluster drain are separate records: undrain the
one you drained. As for drain, another cluster than the asked federator's
needs the clusterset admin's etcd credentials.`,
		Example: `  causeway undrain east --service demo/echo --state-file /tmp/causeway.json`,
		Args:    cobra.ExactArgs(1),
	}
	a := addAdminFlags(cmd, g)
	eo := addEtcdAdminFlags(cmd, crossClusterEtcdUsage)
	cmd.Flags().StringVar(&service, "service", "", "undrain only this service, as NAMESPACE/NAME")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return a.runAbout(cmd, eo, args[0], func(ctx context.Context, c *cli.Client) (cli.Tabular, error) {
			return c.Undrain(ctx, args[0], service)
		}, func(ctx context.Context, e *cli.EtcdAdmin) (cli.Tabular, error) {
			return e.Undrain(ctx, args[0], service)
		})
	}
	return cmd
}
