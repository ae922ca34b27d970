package main

import (
	"context"
	"os"

	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/spf13/cobra"
)

// etcdFlags are the flags of the `causeway etcd` verbs: the clusterset
// admin's etcd credentials, or a dev state file holding them.
type etcdFlags struct {
	g         *globalFlags
	opts      *cli.EtcdOptions
	stateFile string
	output    string
}

func addEtcdFlags(cmd *cobra.Command, g *globalFlags) *etcdFlags {
	e := &etcdFlags{g: g, opts: addEtcdAdminFlags(cmd, "federation etcd endpoints, comma-separated")}
	f := cmd.Flags()
	f.StringVar(&e.stateFile, "state-file", "", "state file of a running causeway dev: etcd credentials not given otherwise come from it (env "+cli.EnvStateFile+")")
	f.DurationVar(&e.opts.Timeout, "timeout", cli.DefaultTimeout, "deadline for connecting and each request")
	f.StringVarP(&e.output, "output", "o", "table", "output format: table, json or yaml")
	return e
}

// run connects as the clusterset admin, calls fn and prints its answer.
func (e *etcdFlags) run(cmd *cobra.Command, fn func(context.Context, *cli.EtcdAdmin) (cli.Tabular, error)) error {
	o := *e.opts
	state := e.stateFile
	if state == "" {
		state = os.Getenv(cli.EnvStateFile)
	}
	if state != "" {
		var err error
		if o, _, err = o.WithStateFile(state); err != nil {
			return err
		}
	}
	a := &adminFlags{g: e.g, output: e.output}
	a.opts.Timeout = o.Timeout
	return a.runEtcd(cmd, o, fn)
}

func newEtcdCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Clusterset-admin work on the federation etcd: auth, cluster users, key layout migration",
		Long: `Work on the federation etcd as the clusterset admin (etcd user
causeway-clusterset-admin, or root). Every verb takes --etcd and the etcd
credential flags, or --state-file of a running causeway dev.`,
	}
	cmd.AddCommand(newEtcdMigrateCmd(g), newEtcdClusterUserCmd(g), newEtcdSetupAuthCmd(g))
	return cmd
}

func newEtcdMigrateCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Move export records to the cluster-first key layout",
		Long: `Move every export record at a key of the layout before cluster-first keys
(exports/<ns>/<svc>/<cluster>) to exports/<cluster>/<ns>/<svc>, value and
creation time unchanged, one transaction per record. Federators of this
release ignore the old keys (and log once that this verb is needed); a
record the cluster's federator already republished under the new key wins.
Running it again changes nothing.`,
		Example: `  causeway etcd migrate --etcd https://etcd.example:2379 --etcd-ca etcd-ca.crt \
    --etcd-username causeway-clusterset-admin --etcd-password-file admin.password`,
		Args: cobra.NoArgs,
	}
	e := addEtcdFlags(cmd, g)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return e.run(cmd, func(ctx context.Context, a *cli.EtcdAdmin) (cli.Tabular, error) { return a.Migrate(ctx) })
	}
	return cmd
}

func newEtcdClusterUserCmd(g *globalFlags) *cobra.Command {
	var cluster, out string
	cmd := &cobra.Command{
		Use:   "cluster-user --cluster NAME --out DIR",
		Short: "Create a cluster's own etcd user and role, and write its password",
		Long: `Create (or reset the password of) the etcd user causeway-NAME and its role,
which may read the whole federation and write only the cluster's own keys
(docs/etcd-schema.md), and write the new password to DIR/password (0600).
Give the federator etcd.username causeway-NAME and etcd.passwordFile
DIR/password. causeway join does this itself for a new cluster.`,
		Example: `  causeway etcd cluster-user --cluster south --out /etc/causeway/etcd --state-file /tmp/cw.json`,
		Args:    cobra.NoArgs,
	}
	e := addEtcdFlags(cmd, g)
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster, a DNS label (required)")
	cmd.Flags().StringVar(&out, "out", "", "directory for the password file (required)")
	_ = cmd.MarkFlagRequired("cluster")
	_ = cmd.MarkFlagRequired("out")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return e.run(cmd, func(ctx context.Context, a *cli.EtcdAdmin) (cli.Tabular, error) {
			return a.ClusterUser(ctx, cluster, out)
		})
	}
	return cmd
}

func newEtcdSetupAuthCmd(g *globalFlags) *cobra.Command {
	var rootPW, adminPW string
	cmd := &cobra.Command{
		Use:   "setup-auth --root-password-file FILE --admin-password-file FILE",
		Short: "Create etcd's root and clusterset-admin users and turn etcd auth on",
		Long: `Create etcd's root user and the clusterset admin (causeway-clusterset-admin,
root role), with the passwords in the files, and enable etcd auth. Run it
once per federation etcd, before the first join; on an etcd with auth on,
run it as root or the clusterset admin (it is idempotent). Then create each
existing cluster's user with causeway etcd cluster-user.`,
		Args: cobra.NoArgs,
	}
	e := addEtcdFlags(cmd, g)
	cmd.Flags().StringVar(&rootPW, "root-password-file", "", "file holding the root user's password (required)")
	cmd.Flags().StringVar(&adminPW, "admin-password-file", "", "file holding the clusterset admin's password (required)")
	_ = cmd.MarkFlagRequired("root-password-file")
	_ = cmd.MarkFlagRequired("admin-password-file")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return e.run(cmd, func(ctx context.Context, a *cli.EtcdAdmin) (cli.Tabular, error) {
			return a.SetupAuth(ctx, rootPW, adminPW)
		})
	}
	return cmd
}
