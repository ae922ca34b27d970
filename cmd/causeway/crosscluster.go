package main

import (
	"context"
	"os"

	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/spf13/cobra"
)

// addEtcdAdminFlags registers the clusterset-admin etcd flags of the verbs
// that may write about another cluster than the asked federator's.
func addEtcdAdminFlags(cmd *cobra.Command, etcdUsage string) *cli.EtcdOptions {
	o := &cli.EtcdOptions{}
	f := cmd.Flags()
	f.StringSliceVar(&o.Endpoints, "etcd", nil, etcdUsage)
	f.StringVar(&o.CAFile, "etcd-ca", "", "CA certificate that verifies etcd")
	f.StringVar(&o.CertFile, "etcd-cert", "", "etcd client certificate")
	f.StringVar(&o.KeyFile, "etcd-key", "", "etcd client certificate's key")
	f.StringVar(&o.ServerName, "etcd-server-name", "", "name etcd's certificate is verified against (default: the endpoint's host)")
	f.StringVar(&o.Username, "etcd-username", "", "etcd user, the clusterset admin ("+"causeway-clusterset-admin"+")")
	f.StringVar(&o.PasswordFile, "etcd-password-file", "", "file holding the etcd user's password")
	return o
}

// crossClusterEtcdUsage is the --etcd usage of drain, undrain and clusters remove.
const crossClusterEtcdUsage = "federation etcd endpoints: act as the clusterset admin directly in etcd " +
	"(needed for another cluster than the federator's own; under causeway dev the state file's clusterset admin is used)"

// runAbout runs a write about cluster: through the asked federator's Admin
// API when cluster is that federator's own, else directly in etcd as the
// clusterset admin, with --etcd or the state file's clusterset-admin
// credentials. Without either, the federator is asked and refuses with
// what to run instead.
func (a *adminFlags) runAbout(cmd *cobra.Command, eo *cli.EtcdOptions, cluster string,
	viaAPI func(context.Context, *cli.Client) (cli.Tabular, error),
	viaEtcd func(context.Context, *cli.EtcdAdmin) (cli.Tabular, error),
) error {
	if len(eo.Endpoints) > 0 {
		return a.runEtcd(cmd, *eo, viaEtcd)
	}
	if target, err := a.resolve(cmd); err == nil {
		if asked, err := target.Cluster(); err == nil && asked != cluster {
			stateFile := a.opts.StateFile
			if stateFile == "" {
				stateFile = os.Getenv(cli.EnvStateFile)
			}
			if stateFile != "" {
				o, ok, err := eo.WithStateFile(stateFile)
				if err != nil {
					return err
				}
				if ok {
					return a.runEtcd(cmd, o, viaEtcd)
				}
			}
		}
	}
	return a.run(cmd, viaAPI)
}

// runEtcd connects to etcd with o, calls fn and prints its answer.
func (a *adminFlags) runEtcd(cmd *cobra.Command, o cli.EtcdOptions, fn func(context.Context, *cli.EtcdAdmin) (cli.Tabular, error)) error {
	format, err := cli.ParseFormat(a.output)
	if err != nil {
		return err
	}
	if _, err := a.g.logger(); err != nil {
		return err
	}
	o.Timeout = a.opts.Timeout
	e, err := cli.DialEtcd(o)
	if err != nil {
		return err
	}
	defer e.Close()
	v, err := fn(cmd.Context(), e)
	if err != nil {
		return err
	}
	return cli.PrintListing(cmd.OutOrStdout(), cmd.ErrOrStderr(), format, v)
}
