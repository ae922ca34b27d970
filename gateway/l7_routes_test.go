package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/gateway/l7route"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// testRoutes is a RouteSource the test sets.
type testRoutes struct {
	mu     sync.Mutex
	routes []*l7route.Route
	ch     chan struct{}
}

func newTestRoutes(t *testing.T, file string) *testRoutes {
	s := &testRoutes{ch: make(chan struct{})}
	s.set(t, file)
	return s
}

func (s *testRoutes) set(t *testing.T, file string) {
	t.Helper()
	routes, err := l7route.ParseStatic([]byte(file))
	require.NoError(t, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes = routes
	close(s.ch)
	s.ch = make(chan struct{})
}

func (s *testRoutes) Routes() []*l7route.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routes
}

func (s *testRoutes) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

// exportSvc makes cluster export demo/name on egressPort (http) at backend.
func (f *egressFixture) exportSvc(cluster, name, backend string) {
	host, port, err := net.SplitHostPort(backend)
	require.NoError(f.t, err)
	var target uint32
	_, err = fmt.Sscan(port, &target)
	require.NoError(f.t, err)
	key := "exports/demo/" + name + "/" + cluster
	f.update(func(e map[string]*causewayv1.Entry) {
		e[key] = &causewayv1.Entry{Key: key, Record: &causewayv1.Entry_Export{Export: &causewayv1.ExportRecord{
			Namespace: "demo", Name: name, Cluster: cluster, Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
			Ports: []*causewayv1.ServicePort{{Name: "http", Port: egressPort, Protocol: causewayv1.Protocol_PROTOCOL_TCP,
				AppProtocol: AppProtocolHTTP}},
			Created: timestamppb.Now(), ReadyPerZone: map[string]uint32{"z": 1},
			Endpoints: []*causewayv1.Endpoint{{Address: host, Ready: true, Zone: "z",
				TargetPorts: map[string]uint32{"http": target}}}}}}
	})
}

// importSvc makes cluster import demo/name (http) on ip.
func (f *egressFixture) importSvc(cluster, name, ip string) {
	key := "imports/" + cluster + "/demo/" + name
	f.update(func(e map[string]*causewayv1.Entry) {
		e[key] = &causewayv1.Entry{Key: key, Record: &causewayv1.Entry_Import{Import: &causewayv1.ImportRecord{
			Namespace: "demo", Name: name, Cluster: cluster, Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
			Ports: []*causewayv1.ServicePort{{Name: "http", Port: egressPort, Protocol: causewayv1.Protocol_PROTOCOL_TCP,
				AppProtocol: AppProtocolHTTP}},
			Ips: []string{ip}}}}
	})
}

// routeFixture: east and west export demo/echo (handlers), west exports
// demo/echo-canary, north imports both with routes; it returns north's
// egress address of echo.
func routeFixture(t *testing.T, routes *testRoutes, east, west http.Handler) (*egressFixture, string) {
	f := newEgressFixture(t,
		egressClusterSpec{name: "east", region: "r1", zone: "z1", instances: 1},
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 1},
		egressClusterSpec{name: "north", region: "r3", zone: "z3", instances: 1})
	f.exportSvc("east", "echo", l7Backend(t, east))
	f.exportSvc("west", "echo", l7Backend(t, west))
	f.exportSvc("west", "echo-canary", l7Backend(t, clusterTag("west-canary")))
	f.importSvc("north", "echo", "127.0.0.1")
	f.importSvc("north", "echo-canary", "127.0.0.2")
	f.routes = routes
	f.start()
	return f, f.vip("north/gw-0", egressVIP)
}

const weightedRoutes = `version: 1
httpRoutes:
- metadata: {namespace: demo, name: echo}
  spec:
    parentRefs: [{kind: Service, name: echo, port: 8080}]
    rules:
    - matches: [{headers: [{name: x-canary, value: "1"}]}]
      backendRefs: [{name: echo-canary, port: 8080}]
    - backendRefs:
      - {group: causeway.dev, kind: Cluster, name: east, weight: 90}
      - {group: causeway.dev, kind: Cluster, name: west, weight: 10}
`

// get sends one request and returns its status and body.
func get(t *testing.T, c *http.Client, method, url string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	req.Header = header
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// TestL7RouteWeightsAndHeaderMatch: a 90/10 split between clusters holds
// within 3 points over 2,000 requests; x-canary: 1 always reaches the
// canary service; a new weight takes effect at once.
func TestL7RouteWeightsAndHeaderMatch(t *testing.T) {
	routes := newTestRoutes(t, weightedRoutes)
	f, addr := routeFixture(t, routes, clusterTag("east"), clusterTag("west"))
	c := &http.Client{Timeout: 10 * time.Second}
	counts := map[string]int{}
	const n = 2000
	for range n {
		code, body := get(t, c, http.MethodGet, "http://"+addr+"/", nil)
		require.Equal(t, http.StatusOK, code, body)
		cluster, _, _ := strings.Cut(body, " ")
		counts[cluster]++
	}
	require.InDelta(t, 0.9, float64(counts["east"])/n, 0.03, "counts %v", counts)
	e, err := f.gw("north/gw-0").Explain(egressKey, egressPort)
	require.NoError(t, err)
	require.Equal(t, AppProtocolHTTP, e.AppProtocol)
	require.Len(t, e.Routes, 2)
	require.Equal(t, "path prefix /, header x-canary=1", e.Routes[0].Match)
	require.Equal(t, []l7route.BackendView{{Target: "demo/echo-canary:8080", Weight: 1}}, e.Routes[0].Backends)
	require.Equal(t, []l7route.BackendView{{Target: "demo/echo:8080 in east", Weight: 90}, {Target: "demo/echo:8080 in west", Weight: 10}},
		e.Routes[1].Backends)
	require.Equal(t, n, counts["east"]+counts["west"], "counts %v", counts)
	for range 50 {
		code, body := get(t, c, http.MethodGet, "http://"+addr+"/", http.Header{"X-Canary": {"1"}})
		require.Equal(t, http.StatusOK, code)
		require.True(t, strings.HasPrefix(body, "west-canary "), body)
	}
	routes.set(t, strings.ReplaceAll(strings.ReplaceAll(weightedRoutes, "weight: 90", "weight: 0"), "weight: 10", "weight: 1"))
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		_, body := get(t, c, http.MethodGet, "http://"+addr+"/", nil)
		assert.True(ct, strings.HasPrefix(body, "west "), body)
	}, 5*time.Second, 10*time.Millisecond)
	for range 50 {
		_, body := get(t, c, http.MethodGet, "http://"+addr+"/", nil)
		require.True(t, strings.HasPrefix(body, "west "), body)
	}
}

// flaky answers 503 to every other request it gets and counts them.
func flaky(cluster string, hits *atomic.Int64, always bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := hits.Add(1); always || n%2 == 0 {
			http.Error(w, "sick", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%s %s", cluster, r.Method)
	})
}

const retryRoutes = `version: 1
httpRoutes:
- metadata: {namespace: demo, name: echo}
  spec:
    parentRefs: [{kind: Service, name: echo, port: 8080}]
    rules:
    - matches: [{method: POST}]
      backendRefs: [{group: causeway.dev, kind: Cluster, name: east}]
      retry: {codes: [503], attempts: 2, backoff: 1ms}
    - backendRefs: [{name: echo, port: 8080}]
      retry: {codes: [503], attempts: 2, backoff: 1ms}
`

// TestL7RetriesStatusCodes: with east answering 503 to half its requests,
// GETs see no error; POSTs (routed to east, not opted in) are not
// retried: each 503 reaches the client.
func TestL7RetriesStatusCodes(t *testing.T) {
	var eastHits atomic.Int64
	_, addr := routeFixture(t, newTestRoutes(t, retryRoutes), flaky("east", &eastHits, false), clusterTag("west"))
	c := &http.Client{Timeout: 10 * time.Second}
	for range 300 {
		code, body := get(t, c, http.MethodGet, "http://"+addr+"/", nil)
		require.Equal(t, http.StatusOK, code, body)
	}
	failedPosts := 0
	for range 100 {
		if code, _ := get(t, c, http.MethodPost, "http://"+addr+"/", nil); code == http.StatusServiceUnavailable {
			failedPosts++
		}
	}
	require.InDelta(t, 50, failedPosts, 1, "every other POST fails: POSTs are not retried without the route opting in")
}

// TestL7RetryBudgetBoundsRetries: with every backend failing, retries add
// at most the budget (20 % of requests plus 10/s over 10 s), not
// attempts × requests.
func TestL7RetryBudgetBoundsRetries(t *testing.T) {
	var eastHits, westHits atomic.Int64
	f, addr := routeFixture(t, newTestRoutes(t, retryRoutes), flaky("east", &eastHits, true), flaky("west", &westHits, true))
	c := &http.Client{Timeout: 10 * time.Second}
	const n = 400
	for range n {
		code, _ := get(t, c, http.MethodGet, "http://"+addr+"/", nil)
		require.Equal(t, http.StatusServiceUnavailable, code)
	}
	hits := eastHits.Load() + westHits.Load()
	require.LessOrEqual(t, hits, int64(n+n/5+100+1), "retries beyond the budget")
	require.Greater(t, hits, int64(n), "some retries were made")
	exhausted := testutil.ToFloat64(f.gw("north/gw-0").metrics.l7.budget.WithLabelValues("demo/echo"))
	require.Positive(t, exhausted)
}

const timeoutRoutes = `version: 1
httpRoutes:
- metadata: {namespace: demo, name: echo}
  spec:
    parentRefs: [{kind: Service, name: echo, port: 8080}]
    rules:
    - backendRefs: [{group: causeway.dev, kind: Cluster, name: west}]
      timeouts: {request: 500ms}
`

// TestL7RouteTimeout: a backend that takes 3 s behind a 500 ms route
// timeout yields 504, not before 500 ms and well before the backend.
func TestL7RouteTimeout(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	_, addr := routeFixture(t, newTestRoutes(t, timeoutRoutes), clusterTag("east"), slow)
	c := &http.Client{Timeout: 10 * time.Second}
	start := time.Now()
	code, _ := get(t, c, http.MethodGet, "http://"+addr+"/", nil)
	took := time.Since(start)
	require.Equal(t, http.StatusGatewayTimeout, code)
	require.GreaterOrEqual(t, took, 500*time.Millisecond)
	require.Less(t, took, 1500*time.Millisecond)
}

// TestL7InvalidRouteKeepsLastGood: a new version naming an unknown backend
// is refused and counted; the last good version keeps serving.
func TestL7InvalidRouteKeepsLastGood(t *testing.T) {
	routes := newTestRoutes(t, timeoutRoutes)
	f, addr := routeFixture(t, routes, clusterTag("east"), clusterTag("west"))
	c := &http.Client{Timeout: 10 * time.Second}
	_, body := get(t, c, http.MethodGet, "http://"+addr+"/", nil)
	require.True(t, strings.HasPrefix(body, "west "), body)
	routes.set(t, strings.ReplaceAll(timeoutRoutes, "name: west}", "name: nowhere}"))
	gw := f.gw("north/gw-0")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(gw.metrics.l7.routes.WithLabelValues("invalid")) == 1
	}, 5*time.Second, 10*time.Millisecond)
	for range 20 {
		_, body := get(t, c, http.MethodGet, "http://"+addr+"/", nil)
		require.True(t, strings.HasPrefix(body, "west "), "the last good route serves: %s", body)
	}
}
