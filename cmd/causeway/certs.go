package main

import (
	"context"
	"io"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/causeway-mesh/causeway/internal/app/cli/certsctl"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/grpclog"
)

func newCertsCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Manage the cluster CAs, inspect certificates and trust bundles, rotate a CA",
		Long: `Every cluster is its own SPIFFE trust domain (<cluster>.<clusterset domain>)
with its own CA; clusters trust each other through the trust bundles they
publish. See docs/certificates.md.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCertsInitCmd(), newCertsInspectCmd(), newCertsBundlesCmd(g), newCertsRotateCACmd(), newCertsAdminCmd())
	return cmd
}

// printAs prints v in the format of -o.
func printAs(cmd *cobra.Command, output string, v cli.Tabular) error {
	format, err := cli.ParseFormat(output)
	if err != nil {
		return err
	}
	return cli.Print(cmd.OutOrStdout(), format, v)
}

func newCertsInitCmd() *cobra.Command {
	var (
		o      certsctl.InitOptions
		output string
	)
	cmd := &cobra.Command{
		Use:   "init --cluster NAME",
		Short: "Create a cluster's CA",
		Long: `Create the CA of a cluster: a self-signed ECDSA P-256 certificate for the trust
domain <cluster>.<domain>, written to --out as ca.crt, ca.key (mode 0600) and
bundle.crt (the trust bundle the federator publishes). Existing files are
never overwritten without --force.`,
		Example: `  causeway certs init --cluster east --out /etc/causeway/east-ca`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := certsctl.Init(o)
			if err != nil {
				return err
			}
			return printAs(cmd, output, r)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Cluster, "cluster", "", "cluster name (a DNS label)")
	f.StringVar(&o.Domain, "domain", certsctl.DefaultDomain, "clusterset domain")
	f.StringVar(&o.Out, "out", "", "CA directory (default ./<cluster>-ca)")
	f.BoolVar(&o.Force, "force", false, "replace an existing CA")
	f.DurationVar(&o.Lifetime, "lifetime", certs.DefaultCALifetime, "CA lifetime")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}

func newCertsInspectCmd() *cobra.Command {
	var (
		o      certsctl.InspectOptions
		output string
	)
	cmd := &cobra.Command{
		Use:   "inspect FILE|ADDR",
		Short: "Show a certificate chain and which bundle verifies it",
		Long: `Show the certificates of a PEM file, or of a live endpoint (host:port: a TLS
handshake with a federator, or --quic for a gateway): subject, SPIFFE ID,
serial, validity and time left, and for every --bundle whether it verifies the
chain. The endpoint is not trusted: its chain is captured and judged against
the bundles; nothing else is sent.`,
		Example: `  causeway certs inspect /etc/causeway/east-ca/ca.crt
  causeway certs inspect 127.0.0.10:7443 --bundle east-ca/bundle.crt --bundle west-ca/bundle.crt
  causeway certs inspect 127.0.0.20:4433 --quic --bundle west-ca/bundle.crt --cert gw.crt --key gw.key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := certsctl.Inspect(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			if err := printAs(cmd, output, r); err != nil {
				return err
			}
			return r.Verified() // non-zero exit when a bundle does not verify the chain
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.Bundles, "bundle", nil, "PEM file of one trust domain's CA certificates (repeatable)")
	f.BoolVar(&o.QUIC, "quic", false, "dial ADDR over QUIC (a gateway) instead of TCP")
	f.StringSliceVar(&o.ALPN, "alpn", nil, "ALPN protocols to offer (default h2, or causeway/1 with --quic)")
	f.StringVar(&o.Cert, "cert", "", "client certificate to present (PEM)")
	f.StringVar(&o.Key, "key", "", "private key of --cert (PEM)")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Second, "handshake deadline")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

func newCertsBundlesCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundles",
		Short: "List the trust bundles published in the federation",
		Long: `List every cluster's trust bundle (its CA certificates) as the asked
federator's catalog holds it, with expiry and problems. During a CA rotation
the rotating cluster shows two CAs; check every cluster before step 2.`,
		Example: `  causeway certs bundles --state-file /tmp/causeway.json --cluster west`,
		Args:    cobra.NoArgs,
	}
	a := addAdminFlags(cmd, g)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if _, err := cli.ParseFormat(a.output); err != nil {
			return err
		}
		target, err := a.resolve(cmd)
		if err != nil {
			return err
		}
		if g.logLevel != "debug" {
			grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
		}
		r, err := certsctl.FetchBundles(context.WithoutCancel(cmd.Context()), target)
		if err != nil {
			return err
		}
		return printAs(cmd, a.output, r)
	}
	return cmd
}

func newCertsRotateCACmd() *cobra.Command {
	var (
		o      certsctl.RotateOptions
		output string
	)
	cmd := &cobra.Command{
		Use:   "rotate-ca --cluster NAME --dir DIR",
		Short: "Rotate a cluster's CA, one resumable step per run",
		Long: `Rotate a cluster's CA without dropping a connection. Each run does the next
step and records it in DIR/rotate-ca.json, so rerunning after an interruption
resumes:

  1. create a new CA and publish it in bundle.crt next to the old one (the
     old CA still signs);
  2. after --propagation-wait, and once every cluster shows both CAs
     (causeway certs bundles): sign with the new CA; components renew onto
     it at 2/3 of their leaf lifetime;
  3. after --leaf-lifetime, when every leaf of the old CA has expired: drop
     the old CA from bundle.crt.

The cluster's federator must read DIR (it reloads it) and publishes
bundle.crt as the cluster's trust bundle.`,
		Example: `  causeway certs rotate-ca --cluster east --dir /etc/causeway/east-ca
  causeway certs rotate-ca --cluster east --dir /etc/causeway/east-ca --status`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := cli.ParseFormat(output); err != nil {
				return err
			}
			r, err := certsctl.RotateCA(o)
			if err != nil {
				return err // one line on stderr, nothing on stdout
			}
			return printAs(cmd, output, r)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Cluster, "cluster", "", "cluster whose CA rotates")
	f.StringVar(&o.Domain, "domain", certsctl.DefaultDomain, "clusterset domain")
	f.StringVar(&o.Dir, "dir", "", "the cluster's CA directory (from causeway certs init)")
	f.DurationVar(&o.CALifetime, "ca-lifetime", certs.DefaultCALifetime, "lifetime of the new CA")
	f.DurationVar(&o.LeafLifetime, "leaf-lifetime", certs.DefaultLeafLifetime,
		"longest leaf lifetime the cluster issues: step 3 waits this long after step 2")
	f.DurationVar(&o.PropagationWait, "propagation-wait", certs.DefaultPropagationWait, "least time between step 1 and step 2")
	f.BoolVar(&o.Force, "force", false, "run the next step without waiting")
	f.BoolVar(&o.Restart, "restart", false, "start a new rotation after a completed one")
	f.BoolVar(&o.Status, "status", false, "only show where the rotation stands")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	_ = cmd.MarkFlagRequired("cluster")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func newCertsAdminCmd() *cobra.Command {
	var (
		o      certsctl.AdminOptions
		output string
	)
	cmd := &cobra.Command{
		Use:   "admin --ca-dir DIR --out DIR",
		Short: "Issue the cluster's admin certificate for the operator verbs",
		Long: `Issue the operator identity spiffe://<cluster>.<domain>/admin from the
cluster's CA directory: --out receives admin.crt, admin.key (0600) and
ca.crt, the files the operator verbs (status, exports, drain, ...) take as
--cert, --key and --ca. Keep the lifetime short; existing files are never
overwritten without --force.`,
		Example: `  causeway certs admin --ca-dir /etc/causeway/east-ca --out ~/.causeway/east
  causeway status --federator east-federator:7443 --cert ~/.causeway/east/admin.crt \
    --key ~/.causeway/east/admin.key --ca ~/.causeway/east/ca.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := cli.ParseFormat(output); err != nil {
				return err
			}
			r, err := certsctl.IssueAdmin(o)
			if err != nil {
				return err
			}
			return printAs(cmd, output, r)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.CADir, "ca-dir", "", "the cluster's CA directory (causeway certs init)")
	f.StringVar(&o.Out, "out", "", "directory for admin.crt, admin.key and ca.crt")
	f.DurationVar(&o.Lifetime, "lifetime", certsctl.DefaultAdminLifetime, "certificate lifetime (capped by the CA's)")
	f.BoolVar(&o.Force, "force", false, "replace existing files")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}
