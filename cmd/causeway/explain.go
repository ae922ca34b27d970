package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/gateway"
	"github.com/causeway-mesh/causeway/internal/cli"
	"github.com/causeway-mesh/causeway/internal/names"
	"github.com/spf13/cobra"
)

func newExplainCmd(_ *globalFlags) *cobra.Command {
	var from, stateFile, gatewayHTTP, output string
	var port uint16
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "explain NAMESPACE/NAME --from CLUSTER",
		Short: "Show the clusters a cluster's gateway sends new flows of a service to, in order, and why it skips the others",
		Long: `Ask the gateway of cluster --from how it routes a new connection to a service
now: the candidate clusters in the order a flow tries them (own cluster, same
zone, same region, the rest; power of two choices on open streams within a
tier), ejected clusters it tries only as a last resort, and for every skipped
cluster why: drained, port not exposed there, no ready endpoints, no live
gateway (leases expired), ejected until <time>.

The gateway's HTTP endpoint comes from --gateway-http (or ` + envGatewayHTTP + `), or
from the state file of a running causeway dev (--state-file or
CAUSEWAY_STATE_FILE), entry --from (default: the first cluster).`,
		Example: `  causeway explain demo/echo --from west --state-file /tmp/causeway.json
  causeway explain demo/echo --port 8080 --gateway-http http://127.10.2.1:9090 -o json`,
		Args: cobra.ExactArgs(1),
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the cluster whose gateway to ask (default: the state file's first cluster)")
	f.Uint16Var(&port, "port", 0, "service port (default: the service's only TCP port)")
	f.StringVar(&stateFile, "state-file", "", "state file of a running causeway dev (env "+cli.EnvStateFile+")")
	f.StringVar(&gatewayHTTP, "gateway-http", "",
		"the gateway's HTTP endpoint, e.g. http://127.10.2.1:9090 (instead of a state file) (env "+envGatewayHTTP+")")
	f.StringVar(&gatewayHTTP, "gateway-admin", "", "deprecated: use --gateway-http")
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
		if stateFile == "" {
			stateFile = os.Getenv(cli.EnvStateFile)
		}
		if gatewayHTTP == "" {
			gatewayHTTP = os.Getenv(envGatewayHTTP)
		}
		url, err := gatewayHTTPURL(gatewayHTTP, stateFile, from)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		e, err := gateway.FetchExplanation(ctx, http.DefaultClient, url, catalog.ServiceKey{Namespace: ns, Name: name}, uint32(port))
		if err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && cmd.Context().Err() == nil {
				return fmt.Errorf("gateway %s unreachable: no answer within %s", url, timeout)
			}
			return err
		}
		if from != "" && e.From != from {
			return fmt.Errorf("gateway %s is of cluster %s, not --from %s", url, e.From, from)
		}
		return cli.Print(cmd.OutOrStdout(), format, e)
	}
	return cmd
}

// envGatewayHTTP is read when --gateway-http is not given.
const envGatewayHTTP = "CAUSEWAY_GATEWAY_HTTP"

// gatewayHTTPURL is the URL of cluster from's gateway HTTP endpoint:
// httpURL if given, else the cluster's HTTP address in a causeway dev state
// file (the first cluster when from is empty).
func gatewayHTTPURL(httpURL, stateFile, from string) (string, error) {
	if httpURL != "" {
		if !strings.Contains(httpURL, "://") {
			httpURL = "http://" + httpURL
		}
		return httpURL, nil
	}
	if stateFile == "" {
		return "", fmt.Errorf("no gateway address: give --gateway-http (or %s), or --state-file (or %s) of a running causeway dev",
			envGatewayHTTP, cli.EnvStateFile)
	}
	b, err := os.ReadFile(stateFile)
	if err != nil {
		return "", fmt.Errorf("read state file: %w", err)
	}
	var st struct {
		Clusters []struct {
			Name string `json:"name"`
			HTTP string `json:"http"`
			// Admin is the key older state files used for HTTP.
			Admin string `json:"admin"`
		} `json:"clusters"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return "", fmt.Errorf("read state file %s: %w", stateFile, err)
	}
	if len(st.Clusters) == 0 {
		return "", fmt.Errorf("state file %s lists no cluster", stateFile)
	}
	known := make([]string, 0, len(st.Clusters))
	for _, c := range st.Clusters {
		if c.Name == from || from == "" {
			addr := c.HTTP
			if addr == "" {
				addr = c.Admin
			}
			if addr == "" {
				return "", fmt.Errorf("state file %s has no HTTP endpoint for cluster %s", stateFile, c.Name)
			}
			return "http://" + addr, nil
		}
		known = append(known, c.Name)
	}
	return "", fmt.Errorf("cluster %q is not in state file %s (it has %s)", from, stateFile, strings.Join(known, ", "))
}
