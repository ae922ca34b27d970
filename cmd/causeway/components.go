package main

import (
	"github.com/causeway-mesh/causeway/internal/app/component"
	"github.com/spf13/cobra"
)

// newComponentCmd is `causeway <name> --config FILE`: load the file, then
// run the component until SIGINT/SIGTERM.
func newComponentCmd[C any](name, short, long, example string,
	load func(string) (*C, error), run func(*cobra.Command, *C) error) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:     name + " --config FILE",
		Short:   short,
		Long:    long,
		Example: example,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := load(path)
			if err != nil {
				return err
			}
			return run(cmd, c)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the component's YAML configuration (docs/components.md)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func newFederatorCmd(g *globalFlags) *cobra.Command {
	return newComponentCmd("federator", "Run a cluster's federator (control plane)",
		`Run one federator replica of a cluster: it publishes the cluster's exports
(static file or Kubernetes ServiceExports) to the federation etcd, writes
the cluster's imports, serves Catalog and Admin over mutual TLS and
Certs.Sign on the bootstrap listener. Replicas elect a leader through etcd.
See docs/components.md.`,
		`  causeway certs init --cluster east --out /etc/causeway/ca
  causeway federator --config /etc/causeway/federator.yaml`,
		component.LoadFederatorConfig,
		func(cmd *cobra.Command, c *component.FederatorConfig) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			return component.RunFederator(cmd.Context(), c, log)
		})
}

func newGatewayCmd(g *globalFlags) *cobra.Command {
	return newComponentCmd("gateway", "Run a gateway instance (data plane)",
		`Run one gateway instance of a cluster: it obtains its certificate from the
federator (Certs.Sign with a join or ServiceAccount token), carries flows
to and from peer gateways over QUIC with mutual TLS, and announces itself
while it serves. SIGTERM withdraws the announcement and lets open flows
finish within the shutdown grace. See docs/components.md.`,
		`  causeway gateway --config /etc/causeway/gateway.yaml`,
		component.LoadGatewayConfig,
		func(cmd *cobra.Command, c *component.GatewayConfig) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			return component.RunGateway(cmd.Context(), c, log)
		})
}

func newDNSShimCmd(g *globalFlags) *cobra.Command {
	return newComponentCmd("dnsshim", "Run a DNS shim for the clusterset zone",
		`Run a DNS shim: authoritative for the clusterset zone, answering for its
cluster from the federator's catalog, over UDP and TCP. See docs/dns.md and
docs/components.md.`,
		`  causeway dnsshim --config /etc/causeway/dnsshim.yaml`,
		component.LoadDNSShimConfig,
		func(cmd *cobra.Command, c *component.DNSShimConfig) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			return component.RunDNSShim(cmd.Context(), c, log)
		})
}
