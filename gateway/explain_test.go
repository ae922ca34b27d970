package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/stretchr/testify/require"
)

// explainGateway returns a gateway of cluster "self" (not running) whose
// catalog has every kind of skipped cluster, and its clock.
func explainGateway(t *testing.T) (*Gateway, *egressFakeClock) {
	t.Helper()
	topo := map[string][2]string{
		"self": {"r1", "z1"}, "near": {"r1", "z1"}, "region": {"r1", "z2"}, "far": {"r2", "z3"},
		"drained": {"r1", "z1"}, "empty": {"r1", "z1"}, "otherport": {"r1", "z1"}, "nolease": {"r1", "z1"}, "ejected": {"r1", "z1"},
	}
	v := egressCandidatesView(topo, "nolease")
	entries := v.Entries()
	entries["drain/drained"] = &causewayv1.Entry{Key: "drain/drained", Record: &causewayv1.Entry_Drain{Drain: &causewayv1.DrainRecord{Cluster: "drained"}}}
	entries["exports/demo/echo/empty"].GetExport().ReadyPerZone = map[string]uint32{"z": 0}
	entries["exports/demo/echo/otherport"].GetExport().Ports[0].Port = 81
	feed := catalog.NewFeed()
	feed.Publish(catalog.NewView(entries, 7))

	ca, err := certs.NewCA(certs.TrustDomainFor("self", domain), time.Hour, time.Now())
	require.NoError(t, err)
	cert, err := ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	clock := newEgressFakeClock()
	g, err := New(Config{Cluster: "self", Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		feed, certs.NewStaticSource(cert))
	require.NoError(t, err)
	require.True(t, g.outliers.failure("ejected"))
	return g, clock
}

func TestExplainListsReasons(t *testing.T) {
	g, clock := explainGateway(t)
	e, err := g.Explain(catalog.ServiceKey{Namespace: "demo", Name: "echo"}, 80)
	require.NoError(t, err)
	require.Equal(t, uint32(80), e.Port)
	require.Equal(t, "self", e.From)
	require.Equal(t, int64(7), e.CatalogRevision)
	require.Equal(t, 3, e.MaxAttempts)
	until := clock.Now().Add(time.Second).UTC()

	type row struct {
		order          int
		tier, status   string
		reason         string
		gatewayStates  []string
		ejectedUntil   *time.Time
		failuresCounts int
	}
	got := map[string]row{}
	var order []string
	for _, c := range e.Clusters {
		order = append(order, c.Cluster)
		var states []string
		for _, gw := range c.Gateways {
			states = append(states, gw.State)
		}
		got[c.Cluster] = row{c.Order, c.Tier, c.Status, c.Reason, states, c.EjectedUntil, c.ConsecutiveFailures}
	}
	// Candidates first (by tier), then the last resort, then the skipped.
	require.Equal(t, []string{"self", "near", "region", "far", "ejected", "drained", "empty", "nolease", "otherport"}, order)
	require.Equal(t, map[string]row{
		"self":      {1, "own cluster", StatusCandidate, "", nil, nil, 0},
		"near":      {2, "same zone", StatusCandidate, "", []string{GatewayIdle}, nil, 0},
		"region":    {3, "same region", StatusCandidate, "", []string{GatewayIdle}, nil, 0},
		"far":       {4, "other", StatusCandidate, "", []string{GatewayIdle}, nil, 0},
		"ejected":   {5, "same zone", StatusLastResort, "ejected until " + until.Format(time.RFC3339), []string{GatewayIdle}, &until, 1},
		"drained":   {0, "same zone", StatusSkipped, SkipDrained, []string{GatewayIdle}, nil, 0},
		"empty":     {0, "same zone", StatusSkipped, SkipNoEndpoints, []string{GatewayIdle}, nil, 0},
		"nolease":   {0, "same zone", StatusSkipped, SkipLeaseExpired, nil, nil, 0},
		"otherport": {0, "same zone", StatusSkipped, SkipPortNotThere, []string{GatewayIdle}, nil, 0},
	}, got)

	// After the ejection the cluster is a candidate again.
	clock.Advance(time.Second)
	e, err = g.Explain(catalog.ServiceKey{Namespace: "demo", Name: "echo"}, 80)
	require.NoError(t, err)
	for _, c := range e.Clusters {
		if c.Cluster == "ejected" {
			require.Equal(t, StatusCandidate, c.Status)
			require.Nil(t, c.EjectedUntil)
		}
	}
}

func TestExplainHandler(t *testing.T) {
	g, _ := explainGateway(t)
	srv := httptest.NewServer(g.ExplainHandler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	e := fetchExplanation(ctx, t, srv, "service=demo/echo&port=80")
	require.Equal(t, "demo/echo", e.Service)
	require.Len(t, e.Clusters, 9)

	// JSON for programs: stable names, lists never null, absent times null.
	resp, err := srv.Client().Get(srv.URL + "/explain?service=demo/echo&port=80")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var raw map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
	first := raw["clusters"].([]any)[0].(map[string]any)
	require.Equal(t, "self", first["cluster"])
	require.Equal(t, []any{}, first["gateways"])
	require.Nil(t, first["ejectedUntil"])
	require.Contains(t, raw, "catalogStaleSince")

	tests := []struct {
		name, query string
		code        int
		body        string
	}{
		{"not exported", "service=demo/nope", http.StatusNotFound, "no cluster exports the service"},
		{"bad service", "service=demo", http.StatusBadRequest, "want NAMESPACE/NAME"},
		{"bad port", "service=demo/echo&port=70000", http.StatusBadRequest, "want 1-65535"},
		{"port needed", "service=demo/echo", http.StatusBadRequest, "ports 80, 81"},
		{"port not exposed anywhere", "service=demo/echo&port=9", http.StatusOK, "port not exposed there"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + "/explain?" + tc.query)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tc.code, resp.StatusCode, string(body))
			require.Contains(t, string(body), tc.body)
		})
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/explain?service=demo/echo", nil)
	require.NoError(t, err)
	resp, err = srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// fetchExplanation GETs the handler's answer to query and decodes it.
func fetchExplanation(ctx context.Context, t *testing.T, srv *httptest.Server, query string) Explanation {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/explain?"+query, nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var e Explanation
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	return e
}

func TestExplainNeedsPortWhenSeveral(t *testing.T) {
	g, _ := explainGateway(t)
	// "otherport" exposes 81, the rest 80, and self imports nothing: two ports.
	_, err := g.Explain(catalog.ServiceKey{Namespace: "demo", Name: "echo"}, 0)
	require.ErrorIs(t, err, ErrPortRequired)
	require.ErrorContains(t, err, "ports 80, 81")
}
