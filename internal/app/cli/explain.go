package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/gateway"
)

// EnvGatewayHTTP is read when --gateway-http is not given.
const EnvGatewayHTTP = "CAUSEWAY_GATEWAY_HTTP"

// GatewayOptions says how to reach a gateway's HTTP endpoint (explain), as
// given on the command line: the address, else its environment variable,
// else the state file's entry for Cluster (the first when empty).
type GatewayOptions struct {
	// HTTP is the gateway's HTTP endpoint: a URL or host:port.
	HTTP string
	// StateFile is the JSON state file of a running `causeway dev`.
	StateFile string
	// Cluster picks the state file's cluster.
	Cluster string
}

// URL resolves the gateway's HTTP endpoint URL, reading the environment
// with getenv.
func (o GatewayOptions) URL(getenv func(string) string) (string, error) {
	addr := o.HTTP
	if addr == "" {
		addr = getenv(EnvGatewayHTTP)
	}
	if addr != "" {
		if !strings.Contains(addr, "://") {
			addr = "http://" + addr
		}
		return addr, nil
	}
	stateFile := o.StateFile
	if stateFile == "" {
		stateFile = getenv(EnvStateFile)
	}
	if stateFile == "" {
		return "", fmt.Errorf("no gateway address: give --gateway-http (or %s), or --state-file (or %s) of a running causeway dev",
			EnvGatewayHTTP, EnvStateFile)
	}
	c, err := readStateCluster(stateFile, o.Cluster)
	if err != nil {
		return "", err
	}
	http := c.HTTP
	if http == "" {
		http = c.Admin
	}
	if http == "" {
		return "", fmt.Errorf("state file %s has no HTTP endpoint for cluster %s", stateFile, c.Name)
	}
	return "http://" + http, nil
}

// Explanation is a gateway's answer to explain, rendered for people by
// WriteTable; JSON and YAML have the gateway's fields.
type Explanation struct {
	gateway.Explanation
}

// FetchExplanation asks the explain handler under baseURL (a gateway's HTTP
// endpoint, e.g. http://127.0.0.1:9091) about key on port (0: the only one).
func FetchExplanation(ctx context.Context, client *http.Client, baseURL string, key catalog.ServiceKey, port uint32) (Explanation, error) {
	q := url.Values{"service": {key.String()}}
	if port != 0 {
		q.Set("port", strconv.Itoa(int(port)))
	}
	u := strings.TrimSuffix(baseURL, "/") + "/explain?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Explanation{}, fmt.Errorf("ask gateway %s: %w", baseURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Explanation{}, fmt.Errorf("ask gateway %s: %w", baseURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Explanation{}, fmt.Errorf("ask gateway %s: %w", baseURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if resp.StatusCode == http.StatusNotFound && !strings.Contains(msg, "explain") {
			msg = "no explain endpoint (404): is " + baseURL + " a gateway's HTTP address?"
		}
		return Explanation{}, fmt.Errorf("gateway %s: %s", baseURL, msg)
	}
	var e Explanation
	if err := json.Unmarshal(body, &e.Explanation); err != nil {
		return Explanation{}, fmt.Errorf("gateway %s: decode explanation: %w", baseURL, err)
	}
	return e, nil
}

// WriteTable renders e: a heading line, then one row per cluster in the
// order flows try them.
func (e Explanation) WriteTable(w io.Writer) error {
	head := fmt.Sprintf("%s port %d from %s (catalog revision %d, at most %d clusters tried per flow)",
		e.Service, e.Port, e.From, e.CatalogRevision, e.MaxAttempts)
	if e.CatalogStaleSince != nil {
		head += ", catalog stale since " + e.CatalogStaleSince.Format(time.RFC3339)
	}
	if _, err := fmt.Fprintln(w, head); err != nil {
		return err
	}
	t := NewTable(w, "ORDER", "CLUSTER", "TIER", "STATUS", "OPEN", "GATEWAYS", "WHY")
	for _, c := range e.Clusters {
		order := "-"
		if c.Order > 0 {
			order = strconv.Itoa(c.Order)
		}
		why := c.Reason
		if c.Status == gateway.StatusLastResort {
			why += " (tried only when no candidate is left)"
		}
		if why == "" {
			why = "-"
		}
		t.Row(order, c.Cluster, c.Tier, c.Status, c.OpenStreams, gatewaysCell(c.Gateways), why)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	return e.writeRoutes(w)
}

// writeRoutes renders the L7 part of e: each request is routed on its
// own, by the routes' matches in the order they are tried.
func (e Explanation) writeRoutes(w io.Writer) error {
	if e.AppProtocol == "" {
		return nil
	}
	if len(e.Routes) == 0 {
		_, err := fmt.Fprintf(w, "\nL7 port (appProtocol %s): each request is balanced on its own over the clusters above; no route attached\n", e.AppProtocol)
		return err
	}
	if _, err := fmt.Fprintf(w, "\nL7 port (appProtocol %s): each request takes the first route match it satisfies\n", e.AppProtocol); err != nil {
		return err
	}
	t := NewTable(w, "#", "ROUTE", "RULE", "MATCH", "BACKENDS (WEIGHT)", "TIMEOUTS", "RETRY")
	for i, r := range e.Routes {
		var backends []string
		for _, b := range r.Backends {
			backends = append(backends, fmt.Sprintf("%s (%d)", b.Target, b.Weight))
		}
		t.Row(i+1, r.Route, r.Rule, r.Match, strings.Join(backends, ", "), r.Timeouts, r.Retry)
	}
	return t.Flush()
}

func gatewaysCell(gws []gateway.ExplainedGateway) string {
	if len(gws) == 0 {
		return "-"
	}
	s := make([]string, len(gws))
	for i, gw := range gws {
		s[i] = gw.Instance + " " + gw.State
	}
	return strings.Join(s, ", ")
}
