package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/gateway"
	"github.com/causeway-mesh/causeway/gateway/l7route"
	"github.com/stretchr/testify/require"
)

func TestGatewayOptionsURL(t *testing.T) {
	state := writeState(t, stateCluster{Name: "east", HTTP: "127.10.1.1:9091"}, stateCluster{Name: "west", HTTP: "127.10.2.1:9091"})
	// A state file of the previous release: the HTTP endpoint under "admin".
	old := writeState(t, stateCluster{Name: "east", Admin: "127.10.1.1:9091", AdminAPI: "127.10.1.1:7443"})
	noHTTP := writeState(t, stateCluster{Name: "east", Federator: "127.10.1.1:7443"})
	for _, tc := range []struct {
		name    string
		opts    GatewayOptions
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "flag URL", opts: GatewayOptions{HTTP: "http://10.0.0.1:9091"}, want: "http://10.0.0.1:9091"},
		{name: "flag host:port beats the state file", opts: GatewayOptions{HTTP: "10.0.0.1:9091", StateFile: state, Cluster: "east"}, want: "http://10.0.0.1:9091"},
		{name: "environment", env: map[string]string{EnvGatewayHTTP: "10.0.0.2:9091"}, want: "http://10.0.0.2:9091"},
		{name: "state file entry", opts: GatewayOptions{StateFile: state, Cluster: "west"}, want: "http://127.10.2.1:9091"},
		{name: "state file from the environment, first cluster", env: map[string]string{EnvStateFile: state}, want: "http://127.10.1.1:9091"},
		{name: "old state file", opts: GatewayOptions{StateFile: old, Cluster: "east"}, want: "http://127.10.1.1:9091"},
		{name: "unknown cluster", opts: GatewayOptions{StateFile: state, Cluster: "north"}, wantErr: `cluster "north" is not in state file`},
		{name: "entry without HTTP", opts: GatewayOptions{StateFile: noHTTP}, wantErr: "has no HTTP endpoint for cluster east"},
		{name: "nothing", opts: GatewayOptions{Cluster: "east"}, wantErr: "no gateway address"},
		{name: "missing file", opts: GatewayOptions{StateFile: "/nonexistent/state.json"}, wantErr: "read state file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.opts.URL(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestExplanationTable(t *testing.T) {
	until := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	e := Explanation{gateway.Explanation{Service: "demo/echo", Port: 80, From: "self", CatalogRevision: 7, MaxAttempts: 3,
		Clusters: []gateway.ExplainedCluster{
			{Cluster: "self", Order: 1, Tier: "own cluster", Status: gateway.StatusCandidate,
				Gateways: []gateway.ExplainedGateway{{Instance: "gw-0", State: gateway.GatewayIdle}}},
			{Cluster: "ejected", Order: 2, Tier: "same zone", Status: gateway.StatusLastResort,
				Reason: "ejected until " + until.Format(time.RFC3339), Gateways: []gateway.ExplainedGateway{{Instance: "gw-0", State: gateway.GatewayIdle}}},
			{Cluster: "nolease", Tier: "same zone", Status: gateway.StatusSkipped, Reason: gateway.SkipLeaseExpired},
		}}}
	var b bytes.Buffer
	require.NoError(t, e.WriteTable(&b))
	out := b.String()
	require.Contains(t, out, "demo/echo port 80 from self (catalog revision 7, at most 3 clusters tried per flow)")
	for _, want := range []string{
		"ORDER  CLUSTER  TIER         STATUS",
		"1      self     own cluster  candidate    0     gw-0 idle  -",
		"2      ejected  same zone    last resort  0     gw-0 idle  ejected until " + until.Format(time.RFC3339) + " (tried only when no candidate is left)",
		"-      nolease  same zone    skipped      0     -          no live gateway (leases expired)",
	} {
		require.Contains(t, out, want)
	}
}

// TestExplanationTableRoutes: an L7 port lists its route matches in the
// order they are tried, with weighted backends; without routes it says
// each request is balanced on its own.
func TestExplanationTableRoutes(t *testing.T) {
	e := Explanation{gateway.Explanation{Service: "demo/echo", Port: 8081, From: "north", AppProtocol: "http",
		Routes: []l7route.RuleView{
			{Route: "HTTPRoute demo/echo", Rule: "canary", Match: "header x-canary=1",
				Backends: []l7route.BackendView{{Target: "demo/echo:8081 in west", Weight: 1}}, Timeouts: "-", Retry: "-"},
			{Route: "HTTPRoute demo/echo", Rule: "#1", Match: "any request", Timeouts: "request 500ms",
				Backends: []l7route.BackendView{{Target: "demo/echo:8081 in east", Weight: 90}, {Target: "demo/echo:8081 in west", Weight: 10}},
				Retry:    "2 attempts on [503], backoff 25ms"},
		}}}
	var b bytes.Buffer
	require.NoError(t, e.WriteTable(&b))
	out := b.String()
	require.Contains(t, out, "L7 port (appProtocol http): each request takes the first route match it satisfies")
	require.Contains(t, out, "1  HTTPRoute demo/echo  canary  header x-canary=1  demo/echo:8081 in west (1)")
	require.Contains(t, out, "demo/echo:8081 in east (90), demo/echo:8081 in west (10)  request 500ms  2 attempts on [503], backoff 25ms")

	e.Routes = nil
	b.Reset()
	require.NoError(t, e.WriteTable(&b))
	require.Contains(t, b.String(), "each request is balanced on its own over the clusters above; no route attached")
}
