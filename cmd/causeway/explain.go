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
	"github.com/causeway-mesh/causeway/devenv"
	"github.com/causeway-mesh/causeway/gateway"
	"github.com/causeway-mesh/causeway/internal/cli"
	"github.com/causeway-mesh/causeway/internal/names"
	"github.com/spf13/cobra"
)

func newExplainCmd(_ *globalFlags) *cobra.Command {
	var from, stateFile, gatewayAdmin, output string
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

The gateway's admin HTTP address comes from --gateway-admin, or from the
state file of a running causeway dev (--state-file or CAUSEWAY_STATE_FILE),
entry --from.`,
		Example: `  causeway explain demo/echo --from west --state-file /tmp/causeway.json
  causeway explain demo/echo --port 8080 --gateway-admin http://127.10.2.1:9090 -o json`,
		Args: cobra.ExactArgs(1),
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the cluster whose gateway to ask (required with a state file)")
	f.Uint16Var(&port, "port", 0, "service port (default: the service's only TCP port)")
	f.StringVar(&stateFile, "state-file", "", "state file of a running causeway dev (env "+cli.EnvStateFile+")")
	f.StringVar(&gatewayAdmin, "gateway-admin", "", "the gateway's admin HTTP URL, e.g. http://127.10.2.1:9090 (instead of a state file)")
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
		url, err := gatewayAdminURL(gatewayAdmin, stateFile, from)
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

// gatewayAdminURL is the admin URL of cluster from's gateway: adminURL if
// given, else the cluster's admin address in a causeway dev state file.
func gatewayAdminURL(adminURL, stateFile, from string) (string, error) {
	if adminURL != "" {
		if !strings.Contains(adminURL, "://") {
			adminURL = "http://" + adminURL
		}
		return adminURL, nil
	}
	if stateFile == "" {
		return "", fmt.Errorf("no gateway address: give --gateway-admin, or --state-file (or %s) of a running causeway dev with --from", cli.EnvStateFile)
	}
	if from == "" {
		return "", fmt.Errorf("--from CLUSTER is required with a state file")
	}
	b, err := os.ReadFile(stateFile)
	if err != nil {
		return "", fmt.Errorf("read state file: %w", err)
	}
	var st devenv.State
	if err := json.Unmarshal(b, &st); err != nil {
		return "", fmt.Errorf("read state file %s: %w", stateFile, err)
	}
	known := make([]string, 0, len(st.Clusters))
	for _, c := range st.Clusters {
		if c.Name == from {
			if c.Admin == "" {
				return "", fmt.Errorf("state file %s has no admin address for cluster %s", stateFile, from)
			}
			return "http://" + c.Admin, nil
		}
		known = append(known, c.Name)
	}
	return "", fmt.Errorf("cluster %q is not in state file %s (it has %s)", from, stateFile, strings.Join(known, ", "))
}
