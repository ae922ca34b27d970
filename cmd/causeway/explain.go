package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	"github.com/spf13/cobra"
)

func newExplainCmd(_ *globalFlags) *cobra.Command {
	var gw cli.GatewayOptions
	var output string
	var port uint16
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "explain NAMESPACE/NAME --cluster CLUSTER",
		Short: "Show the clusters a cluster's gateway sends new flows of a service to, in order, and why it skips the others",
		Long: `Ask the gateway of cluster --cluster how it routes a new connection to a service
now: the candidate clusters in the order a flow tries them (own cluster, same
zone, same region, the rest; power of two choices on open streams within a
tier), ejected clusters it tries only as a last resort, and for every skipped
cluster why: drained, port not exposed there, no ready endpoints, no live
gateway (leases expired), ejected until <time>.

The gateway's HTTP endpoint comes from --gateway-http (or ` + cli.EnvGatewayHTTP + `), or
from the state file of a running causeway dev (--state-file or
` + cli.EnvStateFile + `), entry --cluster (default: the first cluster).`,
		Example: `  causeway explain demo/echo --cluster west --state-file /tmp/causeway.json
  causeway explain demo/echo --port 8080 --gateway-http http://127.10.2.1:9091 -o json`,
		Args: cobra.ExactArgs(1),
	}
	f := cmd.Flags()
	f.StringVar(&gw.Cluster, "cluster", "", "the cluster whose gateway to ask (default: the state file's first cluster)")
	f.StringVar(&gw.Cluster, "from", "", "the same as --cluster")
	f.Uint16Var(&port, "port", 0, "service port (default: the service's only TCP port)")
	f.StringVar(&gw.StateFile, "state-file", "", "state file of a running causeway dev (env "+cli.EnvStateFile+")")
	f.StringVar(&gw.HTTP, "gateway-http", "",
		"the gateway's HTTP endpoint, e.g. http://127.10.2.1:9091 (instead of a state file) (env "+cli.EnvGatewayHTTP+")")
	f.StringVar(&gw.HTTP, "gateway-admin", "", "deprecated: use --gateway-http")
	_ = f.MarkDeprecated("gateway-admin", "use --gateway-http")
	f.DurationVar(&timeout, "timeout", cli.DefaultTimeout, "deadline for connecting and answering")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		format, err := cli.ParseFormat(output)
		if err != nil {
			return err
		}
		ns, name, ok := strings.Cut(args[0], "/")
		if !ok || !names.IsDNSLabel(ns) || !names.IsDNSLabel(name) {
			return fmt.Errorf("service %q: want NAMESPACE/NAME, both DNS labels", args[0])
		}
		url, err := gw.URL(os.Getenv)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		e, err := cli.FetchExplanation(ctx, http.DefaultClient, url, catalog.ServiceKey{Namespace: ns, Name: name}, uint32(port))
		if err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && cmd.Context().Err() == nil {
				return fmt.Errorf("gateway %s unreachable: no answer within %s", url, timeout)
			}
			return err
		}
		if gw.Cluster != "" && e.From != gw.Cluster {
			return fmt.Errorf("gateway %s is of cluster %s, not --cluster %s", url, e.From, gw.Cluster)
		}
		return cli.Print(cmd.OutOrStdout(), format, e)
	}
	return cmd
}
