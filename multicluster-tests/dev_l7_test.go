package multicluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// l7Routes is TestDevL7's routes file (the static format of
// docs/traffic.md) with the default rule's weights for east and west.
func l7Routes(east, west int) string {
	return fmt.Sprintf(`version: 1
httpRoutes:
- metadata: {namespace: demo, name: echo-l7}
  spec:
    parentRefs: [{kind: Service, name: echo, port: 8081}]
    rules:
    - name: canary               # x-canary: 1 → west only
      matches: [{headers: [{name: x-canary, value: "1"}]}]
      backendRefs: [{group: causeway.dev, kind: Cluster, name: west}]
    - name: spread               # /spread: the service as a whole, unweighted
      matches: [{path: {type: PathPrefix, value: /spread}}]
      backendRefs: [{name: echo, port: 8081}]
    - name: split                # the rest: clusters weighted
      backendRefs:
      - {group: causeway.dev, kind: Cluster, name: east, weight: %d}
      - {group: causeway.dev, kind: Cluster, name: west, weight: %d}
`, east, west)
}

// oneConnClient is an HTTP client that keeps one connection to its
// server; dials counts the connections it opened.
func oneConnClient(dials *atomic.Int64) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// countClusters sends n GETs to url through client, with the header h
// (name, value) if given, and counts the serving clusters.
func countClusters(t *testing.T, client *http.Client, url string, n int, h ...string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for i := range n {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		if len(h) == 2 {
			req.Header.Set(h[0], h[1])
		}
		resp, err := client.Do(req)
		require.NoError(t, err, "request %d to %s", i, url)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err, "request %d to %s", i, url)
		require.Equal(t, http.StatusOK, resp.StatusCode, "request %d to %s: %s", i, url, body)
		var r backendReply
		require.NoError(t, json.Unmarshal(body, &r), "request %d to %s: %s", i, url, body)
		counts[r.Cluster]++
	}
	return counts
}

// waitMetric waits until the metrics at url match re.
func waitMetric(t *testing.T, url string, re *regexp.Regexp, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	require.Eventually(t, func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return err == nil && re.Match(b)
	}, timeout, 50*time.Millisecond, "metrics at %s never matched %s", url, re)
}

// TestDevL7: `causeway dev --routes FILE`, seen from north, whose gateway
// reaches echo (exported by east and west) only through the tunnel. Over
// one keep-alive connection to echo's L7 port requests are balanced per
// request (each cluster ≥ 40 %), weighted 90/10 by the route (± 3 %), and
// x-canary: 1 always reaches west; the L4 port pins one connection to one
// cluster. Editing the file changes the split.
// Over 80 lines: one scenario whose steps share the clusterset it starts.
func TestDevL7(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs causeway dev")
	}
	t.Parallel()
	dir := t.TempDir()
	routes, stateFile := filepath.Join(dir, "routes.yaml"), filepath.Join(dir, "state.json")
	require.NoError(t, os.WriteFile(routes, []byte(l7Routes(90, 10)), 0o644))
	p := startDev(t, "--net", "127.82.0.0/16", "--state-file", stateFile, "--routes", routes)
	st := p.waitState(t, stateFile, 90*time.Second)
	require.Equal(t, routes, st.RoutesFile)
	for _, s := range st.Services {
		require.Equal(t, 8081, s.L7Port(), "%s's L7 port", s.Name)
	}
	north := clusterByName(t, st, "north")
	metrics := "http://" + north.HTTP + "/metrics"
	// The route serves once north's gateway has checked it against its
	// catalog (echo imported, exported by east and west).
	waitMetric(t, metrics, regexp.MustCompile(`(?m)^causeway_gateway_routes\{state="valid"\} 1$`), 30*time.Second)
	vip := north.VIPs["demo/echo"]
	l7 := "http://" + net.JoinHostPort(vip, "8081")

	// Per-request balancing: /spread goes to echo as a whole.
	var dials atomic.Int64
	client := oneConnClient(&dials)
	counts := countClusters(t, client, l7+"/spread", 1000)
	t.Logf("1,000 requests to /spread over one connection: %v", counts)
	require.Equal(t, int64(1), dials.Load(), "one client connection")
	require.GreaterOrEqual(t, counts["east"], 400, "east's share: %v", counts)
	require.GreaterOrEqual(t, counts["west"], 400, "west's share: %v", counts)

	// Weights: east 90 / west 10, on the same connection.
	counts = countClusters(t, client, l7+"/", 2000)
	t.Logf("2,000 requests to / (east 90, west 10): %v", counts)
	require.Equal(t, 2000, counts["east"]+counts["west"], "%v", counts)
	require.InDelta(t, 200, counts["west"], 60, "west's share of 2,000 with weight 10 of 100: %v", counts)

	// The header match always reaches west.
	counts = countClusters(t, client, l7+"/", 200, "x-canary", "1")
	require.Equal(t, map[string]int{"west": 200}, counts)
	require.Equal(t, int64(1), dials.Load(), "still one client connection")

	// L4 (8080): one connection stays with one cluster.
	var l4Dials atomic.Int64
	counts = countClusters(t, oneConnClient(&l4Dials), "http://"+net.JoinHostPort(vip, "8080")+"/", 200)
	require.Equal(t, int64(1), l4Dials.Load())
	require.Len(t, counts, 1, "an L4 connection is pinned to one cluster: %v", counts)

	// gRPC (port 50051, appProtocol grpc): unary calls over one h2c
	// connection are balanced per call too.
	grpcCounts := grpcClusters(t, net.JoinHostPort(vip, "50051"), 400)
	t.Logf("400 gRPC calls over one connection: %v", grpcCounts)
	require.GreaterOrEqual(t, grpcCounts["east"], 160, "east's share: %v", grpcCounts)
	require.GreaterOrEqual(t, grpcCounts["west"], 160, "west's share: %v", grpcCounts)

	// Editing the file changes the split within seconds: all to west.
	require.NoError(t, os.WriteFile(routes, []byte(l7Routes(0, 1)), 0o644))
	require.Eventually(t, func() bool {
		return countClusters(t, client, l7+"/", 20)["west"] == 20
	}, 10*time.Second, 100*time.Millisecond, "the new weights did not take effect")
	require.Regexp(t, `(?m)^causeway_gateway_requests_total\{code_class="2xx",destination_cluster="west",route="demo/echo-l7",service="demo/echo"\} [1-9]`,
		httpText(t, metrics))
}

// grpcClusters makes n gRPC health checks over one connection to addr and
// counts the clusters that answered (header metadata x-cluster).
func grpcClusters(t *testing.T, addr string, n int) map[string]int {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	counts := map[string]int{}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var md metadata.MD
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
		cancel()
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
		require.Len(t, md.Get("x-cluster"), 1)
		counts[md.Get("x-cluster")[0]]++
	}
	return counts
}
