package main

import (
	"github.com/causeway-mesh/causeway/internal/app/join"
	"github.com/spf13/cobra"
)

func newJoinCmd() *cobra.Command {
	var (
		o      join.Options
		output string
	)
	cmd := &cobra.Command{
		Use:   "join --cluster NAME --etcd ENDPOINTS --out DIR",
		Short: "Add a cluster to the clusterset: register it, create its CA, write its Helm values",
		Long: `Register a new cluster in the federation etcd (its cluster record and trust
bundle, create-only), create its CA in DIR/ca, create the cluster's own etcd
user causeway-NAME (random password) whose role may write only the cluster's
keys, and write what installing the Helm chart needs: DIR/values.yaml,
DIR/ca-secret.yaml (the CA, for the federator), DIR/etcd-secret.yaml (the
etcd user's password) and DIR/etcd-password (the same, for a federator
configured from a file). Run it with the clusterset-admin etcd credentials
(--etcd-username causeway-clusterset-admin): they are not written anywhere.
Files holding keys are 0600. Nothing is overwritten, in DIR or in etcd,
without --force, and --force refuses a cluster that is still running (live
gateways or a federator holding its election key). See docs/install.md.`,
		Example: `  causeway join --cluster east --region us-east --zone us-east-1a \
    --etcd https://etcd.example:2379 --etcd-ca etcd-ca.crt \
    --etcd-username causeway-clusterset-admin --etcd-password-file admin.password \
    --advertise gw.east.example:4433 --out ./east`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := join.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			return printAs(cmd, output, r)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Cluster, "cluster", "", "the new cluster's name, a DNS label (required)")
	f.StringVar(&o.Domain, "domain", join.DefaultDomain, "the clusterset domain")
	f.StringVar(&o.Region, "region", "", "the cluster's region, for locality routing")
	f.StringVar(&o.Zone, "zone", "", "the cluster's zone, for locality routing")
	f.StringSliceVar(&o.Etcd.Endpoints, "etcd", nil, "federation etcd endpoints, comma-separated (required)")
	f.StringVar(&o.Etcd.CAFile, "etcd-ca", "", "CA certificate that verifies etcd")
	f.StringVar(&o.Etcd.CertFile, "etcd-cert", "", "etcd client certificate")
	f.StringVar(&o.Etcd.KeyFile, "etcd-key", "", "etcd client certificate's key")
	f.StringVar(&o.Etcd.ServerName, "etcd-server-name", "", "name etcd's certificate is verified against (default: the endpoint's host); also written to the values file")
	f.StringVar(&o.Etcd.Username, "etcd-username", "", "etcd user: the clusterset admin (causeway-clusterset-admin)")
	f.StringVar(&o.Etcd.PasswordFile, "etcd-password-file", "", "file holding the etcd user's password")
	f.DurationVar(&o.Etcd.DialTimeout, "etcd-dial-timeout", 0, "bound on connecting to etcd and on each etcd request (default 5s)")
	f.StringSliceVar(&o.Advertise, "advertise", nil, "host:port peers dial to reach this cluster's gateway (written to the values file)")
	f.StringVar(&o.Namespace, "namespace", join.DefaultNamespace, "namespace the chart is installed in")
	f.StringVar(&o.Out, "out", "", "directory for the CA, the values file and the Secret manifests (required)")
	f.DurationVar(&o.CALifetime, "ca-lifetime", 0, "lifetime of the new CA (default 365 days)")
	f.BoolVar(&o.Force, "force", false, "replace existing files and the registration of a cluster that is not running")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	_ = cmd.MarkFlagRequired("cluster")
	_ = cmd.MarkFlagRequired("etcd")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
