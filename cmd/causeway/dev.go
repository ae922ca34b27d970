package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/causeway-mesh/causeway/internal/app/devenv"
	"github.com/spf13/cobra"
)

// binaryName is how the guide tells the user to run this binary: "causeway"
// when that is what PATH finds, else the binary's absolute path.
func binaryName() string {
	self, err := os.Executable()
	if err != nil {
		return "causeway"
	}
	if onPath, err := exec.LookPath("causeway"); err == nil {
		a, errA := filepath.EvalSymlinks(onPath)
		b, errB := filepath.EvalSymlinks(self)
		if errA == nil && errB == nil && a == b {
			return "causeway"
		}
	}
	return self
}

func newDevCmd(g *globalFlags) *cobra.Command {
	var (
		cfg      devenv.Config
		clusters string
		netFlag  string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole clusterset on loopback: embedded etcd, and per cluster a federator, gateway, DNS shim and demo backends",
		Long: `Run a whole clusterset on this machine, no Kubernetes needed.

Every cluster gets its own loopback address (127.10.<n>.1 by default), its own
CA and SPIFFE trust domain, a federator with a static export source, a gateway
(QUIC, mutual TLS), a DNS shim for the clusterset zone, and demo backends:
"echo" exported from the first two clusters, "clock" from the third, each on
port 8080 (L4: balanced per connection) and 8081 (appProtocol http, L7:
balanced and routed per request, by the routes of --routes if given).
Ctrl-C (SIGINT) or SIGTERM stops everything.`,
		Example: `  causeway dev
  causeway dev --routes routes.yaml
  causeway dev --clusters east:us-east:us-east-1a,west:us-west:us-west-1a --state-file /tmp/causeway.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			cfg.Logger = log
			if cfg.Clusters, err = devenv.ParseClusters(clusters); err != nil {
				return err
			}
			if cfg.Net, err = netip.ParsePrefix(netFlag); err != nil {
				return fmt.Errorf("--net %q: want a /16 inside 127.0.0.0/8, like 127.10.0.0/16", netFlag)
			}
			out := cmd.OutOrStdout()
			return devenv.Run(cmd.Context(), cfg, func(st *devenv.State) {
				devenv.PrintGuide(out, st, binaryName())
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&clusters, "clusters", "east:us-east:us-east-1a,west:us-west:us-west-1a,north:eu-north:eu-north-1a",
		"clusters as name[:region[:zone]],...")
	f.StringVar(&netFlag, "net", "127.10.0.0/16", "loopback /16 all addresses come from (cluster n on .n.1, VIPs on .n.128/25)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for etcd data and generated files (default: a temporary directory, removed on exit)")
	f.StringVar(&cfg.StateFile, "state-file", "", "write the clusterset's addresses as JSON to this file once ready (default: state.json in the data dir)")
	f.StringVar(&cfg.Domain, "domain", "clusterset.local", "clusterset DNS zone, checked before anything starts; one trailing dot is accepted")
	f.IntVar(&cfg.DNSPort, "dns-port", 1053, "DNS shim port (UDP and TCP) on every cluster address")
	f.IntVar(&cfg.GatewayPort, "gateway-port", 4433, "gateway QUIC port (UDP)")
	f.IntVar(&cfg.FederatorPort, "federator-port", 7443, "federator gRPC port (its bootstrap, Certs.Sign, port is this + 1)")
	f.IntVar(&cfg.AdminPort, "http-port", 9090, "first HTTP port of each cluster (/metrics, /healthz, /readyz): the federator's; the gateway's (also /explain) is +1, the DNS shim's +2")
	f.IntVar(&cfg.AdminPort, "admin-port", 9090, "deprecated: use --http-port")
	_ = f.MarkDeprecated("admin-port", "use --http-port")
	f.IntVar(&cfg.EtcdPort, "etcd-port", 2379, "embedded etcd client port (peer port is this + 1)")
	f.StringVar(&cfg.RoutesFile, "routes", "", "static L7 routes file (HTTPRoutes, GRPCRoutes; docs/traffic.md) every gateway loads and re-reads when it changes")
	return cmd
}
