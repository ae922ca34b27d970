package main

import (
	"context"

	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/spf13/cobra"
)

func newClustersCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clusters",
		Short: "List the member clusters: locality, trust domain, gateways, exports, drain state",
		Long: `List the federation's member clusters, as the asked federator sees them:
region, zone, trust domain, live gateways (with their etcd lease), the number
of services each exports, and what of it is drained. The answering
federator's own cluster is marked with *.`,
		Example: `  causeway clusters --state-file /tmp/causeway.json
  causeway clusters --federator 10.0.0.5:7443 --cert admin.crt --key admin.key --ca ca.crt -o json`,
		Args: cobra.NoArgs,
	}
	a := addAdminFlags(cmd, g)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return a.run(cmd, func(ctx context.Context, c *cli.Client) (cli.Tabular, error) { return c.Clusters(ctx) })
	}
	cmd.AddCommand(newClustersRemoveCmd(a), newClustersTrustCmd(a))
	return cmd
}

func newClustersRemoveCmd(a *adminFlags) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a cluster from the federation",
		Long: `Remove a cluster from the federation: delete its exports, gateway records,
drain records, trust bundle, imports, clusterset IP reservations and cluster
record from etcd. Every other cluster's federator then drops the cluster from
its imports by itself. Removing a cluster is the clusterset admin's write:
it goes directly to etcd with --etcd and the clusterset-admin etcd
credentials (under causeway dev, the state file's); a federator removes only
its own cluster, with --force. Stop the cluster's federator and gateways
first: a live cluster (gateways on live leases, or a federator holding its
election key) is removed only with --force, and a running federator
registers its cluster again.`,
		Example: `  causeway clusters remove north --state-file /tmp/causeway.json
  causeway clusters remove north --etcd https://etcd.example:2379 --etcd-ca etcd-ca.crt \
    --etcd-username causeway-clusterset-admin --etcd-password-file admin.password`,
		Args: cobra.ExactArgs(1),
	}
	eo := addEtcdAdminFlags(cmd, crossClusterEtcdUsage)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return a.runAbout(cmd, eo, args[0], func(ctx context.Context, c *cli.Client) (cli.Tabular, error) {
			return c.RemoveCluster(ctx, args[0], force)
		}, func(ctx context.Context, e *cli.EtcdAdmin) (cli.Tabular, error) {
			return e.RemoveCluster(ctx, args[0], force)
		})
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove even a live cluster, or the answering federator's own cluster")
	return cmd
}

func newClustersTrustCmd(a *adminFlags) *cobra.Command {
	var fingerprint string
	cmd := &cobra.Command{
		Use:   "trust NAME [--fingerprint sha256:HEX]",
		Short: "Trust a peer cluster's trust bundle (the explicit first-use or re-pin step)",
		Long: `Make the asked federator's cluster trust the trust bundle (CA certificates)
that cluster NAME publishes. A peer's bundle is accepted only when it is
pinned (federator trustPins, or this command) and afterwards only when each
change is signed by a CA of the bundle trusted before (a CA rotation). Until
then its gateways are refused, and causeway clusters shows it "untrusted".

With --fingerprint (printed by causeway join, or by causeway certs inspect
on NAME's CA), only a published CA with that SHA-256 fingerprint is trusted,
and every rotation it signed. Without it, the bundle published now is trusted
as it is: compare its fingerprints, printed here, with NAME's CA first.
Run it against every other cluster's federator: each trusts for itself. Run
it again after NAME's CA was replaced without a rotation (join --force).`,
		Example: `  causeway clusters trust south --fingerprint sha256:3f1c... --state-file /tmp/causeway.json --cluster east`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.run(cmd, func(ctx context.Context, c *cli.Client) (cli.Tabular, error) {
				return c.TrustCluster(ctx, args[0], fingerprint)
			})
		},
	}
	cmd.Flags().StringVar(&fingerprint, "fingerprint", "", "SHA-256 fingerprint of one of the cluster's CA certificates (sha256:HEX)")
	return cmd
}
