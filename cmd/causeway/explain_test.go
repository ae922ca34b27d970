package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway-mesh/causeway/devenv"
	"github.com/causeway-mesh/causeway/gateway"
	"github.com/stretchr/testify/require"
)

func TestGatewayHTTPURL(t *testing.T) {
	st := devenv.State{Clusters: []devenv.ClusterState{{Name: "east", HTTP: "127.10.1.1:9090"}, {Name: "west", HTTP: "127.10.2.1:9090"}}}
	b, err := json.Marshal(st)
	require.NoError(t, err)
	state := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(state, b, 0o600))
	// A state file of the previous release: the HTTP endpoint under "admin".
	old := filepath.Join(t.TempDir(), "old.json")
	require.NoError(t, os.WriteFile(old, []byte(`{"clusters":[{"name":"east","admin":"127.10.1.1:9090","adminAPI":"127.10.1.1:7443"}]}`), 0o600))
	tests := []struct {
		name, admin, state, from string
		want, wantErr            string
	}{
		{name: "flag URL", admin: "http://10.0.0.1:9090", want: "http://10.0.0.1:9090"},
		{name: "flag host:port", admin: "10.0.0.1:9090", state: state, from: "east", want: "http://10.0.0.1:9090"},
		{name: "state file", state: state, from: "west", want: "http://127.10.2.1:9090"},
		{name: "state file, --from defaults to the first", state: state, want: "http://127.10.1.1:9090"},
		{name: "old state file", state: old, from: "east", want: "http://127.10.1.1:9090"},
		{name: "unknown cluster", state: state, from: "north", wantErr: `cluster "north" is not in state file`},
		{name: "nothing", from: "east", wantErr: "no gateway address"},
		{name: "missing file", state: "/nonexistent/state.json", from: "east", wantErr: "read state file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gatewayHTTPURL(tc.admin, tc.state, tc.from)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

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
	t.Setenv(envGatewayHTTP, srv.URL)
	out, err = run("demo/echo")
	require.NoError(t, err)
	require.Contains(t, out, "demo/echo port 8080 from east")

	_, err = run("demo/echo", "--gateway-http", srv.URL, "--from", "west")
	require.ErrorContains(t, err, "is of cluster east, not --from west")
	_, err = run("Demo/echo", "--gateway-http", srv.URL)
	require.ErrorContains(t, err, "want NAMESPACE/NAME")
}
