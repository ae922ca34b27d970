package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/grpclog"
)

// adminFlags are the connection and output flags of every operator verb.
type adminFlags struct {
	g      *globalFlags
	opts   cli.Options
	output string
}

// addAdminFlags registers the flags on cmd (and its subcommands).
func addAdminFlags(cmd *cobra.Command, g *globalFlags) *adminFlags {
	a := &adminFlags{g: g}
	f := cmd.PersistentFlags()
	f.StringVar(&a.opts.Federator, "federator", "",
		"the federator API's host:port, the federator's gRPC port (default port 7443) (env "+cli.EnvFederator+")")
	// --admin is the old name of --federator: hidden, and a notice on stderr.
	f.StringVar(&a.opts.Federator, "admin", "", "deprecated: use --federator")
	_ = f.MarkDeprecated("admin", "use --federator")
	f.StringVar(&a.opts.Cert, "cert", "", "admin client certificate, PEM (env "+cli.EnvCert+")")
	f.StringVar(&a.opts.Key, "key", "", "admin client private key, PEM (env "+cli.EnvKey+")")
	f.StringVar(&a.opts.CA, "ca", "", "CA certificate of the federator's cluster, PEM (env "+cli.EnvCA+")")
	f.StringVar(&a.opts.StateFile, "state-file", "",
		"state file of a running causeway dev: address and credentials not given otherwise come from it (env "+cli.EnvStateFile+")")
	f.StringVar(&a.opts.Cluster, "cluster", "", "the state file's cluster whose federator to ask (default: the first); needs --state-file or "+cli.EnvStateFile)
	f.DurationVar(&a.opts.Timeout, "timeout", cli.DefaultTimeout, "deadline for connecting and answering")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")
	return a
}

// run connects to the admin API, calls fn and prints its answer.
func (a *adminFlags) run(cmd *cobra.Command, fn func(context.Context, *cli.Client) (cli.Tabular, error)) error {
	format, err := cli.ParseFormat(a.output)
	if err != nil {
		return err
	}
	target, err := a.resolve(cmd)
	if err != nil {
		return err
	}
	if a.g.logLevel != "debug" {
		// Failures come back as one error line; gRPC's own logs would repeat them.
		grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
	}
	c, err := cli.Dial(target)
	if err != nil {
		return err
	}
	defer c.Close()
	v, err := fn(cmd.Context(), c)
	if err != nil {
		return err
	}
	return cli.PrintListing(cmd.OutOrStdout(), cmd.ErrOrStderr(), format, v)
}

// resolve checks the global log flags, resolves the connection flags and
// prints a notice for every deprecated name they used.
func (a *adminFlags) resolve(cmd *cobra.Command) (cli.Target, error) {
	if _, err := a.g.logger(); err != nil {
		return cli.Target{}, err
	}
	target, err := a.opts.Resolve(os.Getenv)
	if err != nil {
		return cli.Target{}, err
	}
	for _, d := range target.Deprecated {
		fmt.Fprintln(cmd.ErrOrStderr(), "Warning:", d)
	}
	return target, nil
}
