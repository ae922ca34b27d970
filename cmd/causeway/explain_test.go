package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/causeway-mesh/causeway/gateway"
	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/stretchr/testify/require"
)

func TestExplainCommand(t *testing.T) {
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		_ = json.NewEncoder(w).Encode(gateway.Explanation{Service: "demo/echo", Port: 8080, From: "east", MaxAttempts: 3,
			Clusters: []gateway.ExplainedCluster{
				{Cluster: "west", Order: 1, Tier: "same region", Status: gateway.StatusCandidate},
				{Cluster: "north", Tier: "other", Status: gateway.StatusSkipped, Reason: gateway.SkipDrained},
			}})
	}))
	t.Cleanup(srv.Close)
	run := func(args ...string) (string, error) {
		cmd := newRoot()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs(append([]string{"explain"}, args...))
		err := cmd.Execute()
		return out.String(), err
	}

	out, err := run("demo/echo", "--gateway-http", srv.URL, "--port", "8080")
	require.NoError(t, err)
	require.Equal(t, "port=8080&service=demo%2Fecho", query)
	require.Contains(t, out, "demo/echo port 8080 from east")
	require.Contains(t, out, "north    other        skipped    0     -         drained")

	out, err = run("demo/echo", "--gateway-http", srv.URL, "-o", "json")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, "{"), out)

	// The old flag name still works, with a notice.
	out, err = run("demo/echo", "--gateway-admin", srv.URL)
	require.NoError(t, err)
	require.Contains(t, out, "Flag --gateway-admin has been deprecated, use --gateway-http")
	require.Contains(t, out, "demo/echo port 8080 from east")
	// And so does the environment variable.
	t.Setenv(cli.EnvGatewayHTTP, srv.URL)
	out, err = run("demo/echo")
	require.NoError(t, err)
	require.Contains(t, out, "demo/echo port 8080 from east")

	_, err = run("demo/echo", "--gateway-http", srv.URL, "--cluster", "west")
	require.ErrorContains(t, err, "is of cluster east, not --cluster west")
	_, err = run("demo/echo", "--gateway-http", srv.URL, "--from", "west")
	require.ErrorContains(t, err, "is of cluster east, not --cluster west", "--from is --cluster")
	_, err = run("Demo/echo", "--gateway-http", srv.URL)
	require.ErrorContains(t, err, "want NAMESPACE/NAME")
}
