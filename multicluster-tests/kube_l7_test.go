package multicluster

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/gateway/kuberoutes"
	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// l7Port is the port of demo/echo in TestScenarioL7RoutesKubernetes.
const l7Port = 8080

// TestScenarioL7RoutesKubernetes is issue 18's weights and invalid-route
// acceptance with three real kube-apiservers and the causeway processes
// in Kubernetes mode: east and west export demo/echo on a port with
// appProtocol http, north imports it and its gateway reads north's
// HTTPRoutes (kubernetesRoutes). Without a route, keep-alive requests on
// one client connection are balanced per request over both clusters; an
// HTTPRoute weighting the clusters 90/10 (causeway.dev Cluster backends)
// is Accepted and splits the traffic so; new weights (10/90) take effect
// within 2 s of the update; invalid versions (all weights 0, an unknown
// cluster) are Accepted=False with a reason and the last good version
// (10/90) keeps serving.
//
// Endpoints are in EndpointSlices, which Kubernetes refuses for loopback
// addresses, so the test runs in a network namespace of its own where
// 10.202.n.0/24 is local (as TestScenarioEndpointsUnreadyKubernetes).
// Over 80 lines: one scenario whose steps share the servers it starts.
func TestScenarioL7RoutesKubernetes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three kube-apiservers and nine causeway processes")
	}
	t.Parallel() // in a network namespace of its own
	l, err := runInNetns(t, []string{"east", "west", "north"}, false)
	if err != nil {
		t.Skipf("L7 routes in Kubernetes need endpoint addresses Kubernetes accepts, so a network namespace: %v "+
			"(TestDevL7 covers the routes with the static source)", err)
	}
	if l == nil {
		return // the test ran in the namespace
	}
	kc := kubetest.StartN(t, "east", "west", "north")
	ctx := context.Background()
	north := kc[2]
	require.NoError(t, north.InstallGatewayAPICRDs(ctx, kubetest.GatewayAPIExperimental, "httproutes", "grpcroutes"))
	specs := []pclusterSpec{
		{name: "east", region: "us", zone: "us-1a", exports: []string{"echo"}, kube: kc[0]},
		{name: "west", region: "us", zone: "us-1b", exports: []string{"echo"}, kube: kc[1]},
		{name: "north", region: "eu", zone: "eu-1a", kube: north, kubeRoutes: true},
	}
	for i, k := range kc {
		for _, ns := range []string{"demo", "causeway"} {
			_, err := k.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			require.NoError(t, err)
		}
		gwIP := l.cluster(specs[i].name).IP
		createServiceWithEndpoint(t, k, "causeway", "causeway-gateway", "quic", 4433, gwIP, 4433)
	}
	s := startPSetIn(t, l, 1, specs)
	for _, k := range kc[:2] {
		c := s.clusters[k.Name]
		createServiceWithEndpoint(t, k, "demo", "echo", "http", l7Port, c.backendIP, c.backendPort("echo"))
		setAppProtocol(t, k, "demo", "echo", "http")
		_, err := k.MCS.MulticlusterV1beta1().ServiceExports("demo").Create(ctx,
			&mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "demo"}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	url := "http://" + kubeProxyTarget(t, north, "demo", "echo", "http", 60*time.Second) + "/"
	t.Logf("L7 routes: north's clients reach demo/echo at %s (derived Service endpoint)", url)
	var dials atomic.Int64
	client := oneConnClient(&dials)

	// (1) No route: per-request balancing over one connection.
	waitBothServe(t, client, url, 60*time.Second)
	counts := countClusters(t, client, url, 400)
	t.Logf("L7 routes: no route, 400 requests: %v", counts)
	for _, c := range []string{"east", "west"} {
		require.GreaterOrEqual(t, counts[c], 160, "%s answered under 40 %% of 400 requests: %v", c, counts)
	}

	// (2) An HTTPRoute weighting east 90, west 10.
	gw, err := gatewayclient.NewForConfig(north.RESTConfig)
	require.NoError(t, err)
	routes := gw.GatewayV1().HTTPRoutes("demo")
	hr, err := routes.Create(ctx, echoRoute(clusterRef("east", 90), clusterRef("west", 10)), metav1.CreateOptions{})
	require.NoError(t, err)
	cond := waitRouteAccepted(t, routes, hr.Generation, metav1.ConditionTrue, 30*time.Second)
	t.Logf("L7 routes: 90/10 route: Accepted=%s %s", cond.Status, cond.Reason)
	counts = countClusters(t, client, url, 2000)
	t.Logf("L7 routes: 90/10, 2000 requests: %v", counts)
	require.InDelta(t, 1800, counts["east"], 60, "east's share is not 90 %% ± 3: %v", counts)

	// (3) New weights 10/90: the split follows within 2 s.
	start := time.Now()
	hr = updateRoute(t, routes, clusterRef("east", 10), clusterRef("west", 90))
	took := waitWestDominates(t, client, url, start, 10*time.Second)
	t.Logf("L7 routes: weights 90/10 → 10/90: split changed %s after the update", took.Round(time.Millisecond))
	require.Less(t, took, 2*time.Second, "the split took over 2 s to follow the update")
	waitRouteAccepted(t, routes, hr.Generation, metav1.ConditionTrue, 30*time.Second)

	// (4) Invalid versions: Accepted=False, the 10/90 routing keeps serving.
	for _, bad := range []struct {
		name, reason string // reason: docs/traffic.md's table
		refs         []gatewayv1.HTTPBackendRef
	}{
		{"all weights 0", "UnsupportedValue", []gatewayv1.HTTPBackendRef{clusterRef("east", 0), clusterRef("west", 0)}},
		{"unknown cluster", "BackendNotFound", []gatewayv1.HTTPBackendRef{clusterRef("east", 10), clusterRef("south", 90)}},
	} {
		hr = updateRoute(t, routes, bad.refs...)
		cond := waitRouteAccepted(t, routes, hr.Generation, metav1.ConditionFalse, 30*time.Second)
		require.Equal(t, bad.reason, cond.Reason, "%s: Accepted=False with the wrong reason: %s", bad.name, cond.Message)
		t.Logf("L7 routes: %s: Accepted=False %s: %s", bad.name, cond.Reason, cond.Message)
		counts = countClusters(t, client, url, 1000)
		t.Logf("L7 routes: %s, 1000 requests: %v", bad.name, counts)
		require.InDelta(t, 900, counts["west"], 45, "%s: west's share is not the last good 90 %% ± 4.5: %v", bad.name, counts)
	}
	require.EqualValues(t, 1, dials.Load(), "the client opened more than one connection")
}

// setAppProtocol sets the appProtocol of every port of Service ns/name.
func setAppProtocol(t *testing.T, k *kubetest.Cluster, ns, name, proto string) {
	t.Helper()
	ctx := context.Background()
	svc, err := k.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	for i := range svc.Spec.Ports {
		svc.Spec.Ports[i].AppProtocol = ptrTo(proto)
	}
	_, err = k.Kube.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// clusterRef is a causeway.dev Cluster backendRef of the given weight.
func clusterRef(cluster string, weight int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Group: ptrTo(gatewayv1.Group("causeway.dev")), Kind: ptrTo(gatewayv1.Kind("Cluster")),
			Name: gatewayv1.ObjectName(cluster)},
		Weight: ptrTo(weight),
	}}
}

// echoRoute is HTTPRoute demo/echo-split attached to demo/echo's port
// (GAMMA) with one rule of refs.
func echoRoute(refs ...gatewayv1.HTTPBackendRef) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "echo-split", Namespace: "demo"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Group: ptrTo(gatewayv1.Group("")), Kind: ptrTo(gatewayv1.Kind("Service")),
				Name: "echo", Port: ptrTo(gatewayv1.PortNumber(l7Port)),
			}}},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: refs}},
		},
	}
}

// updateRoute replaces demo/echo-split's rule with one of refs, as
// kubectl apply would, and returns the stored route.
func updateRoute(t *testing.T, routes routeClient, refs ...gatewayv1.HTTPBackendRef) *gatewayv1.HTTPRoute {
	t.Helper()
	ctx := context.Background()
	hr, err := routes.Get(ctx, "echo-split", metav1.GetOptions{})
	require.NoError(t, err)
	hr.Spec.Rules = []gatewayv1.HTTPRouteRule{{BackendRefs: refs}}
	hr, err = routes.Update(ctx, hr, metav1.UpdateOptions{})
	require.NoError(t, err)
	return hr
}

// routeClient is the part of the HTTPRoute client the test uses.
type routeClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*gatewayv1.HTTPRoute, error)
	Update(ctx context.Context, hr *gatewayv1.HTTPRoute, opts metav1.UpdateOptions) (*gatewayv1.HTTPRoute, error)
}

// waitRouteAccepted waits until demo/echo-split's status has causeway's
// parent entry for generation gen with Accepted of status want, and
// returns that condition.
func waitRouteAccepted(t *testing.T, routes routeClient, gen int64, want metav1.ConditionStatus, timeout time.Duration) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	var last []gatewayv1.RouteParentStatus
	ok := pollUntil(timeout, 100*time.Millisecond, func() bool {
		hr, err := routes.Get(context.Background(), "echo-split", metav1.GetOptions{})
		if err != nil {
			return false
		}
		last = hr.Status.Parents
		for _, p := range hr.Status.Parents {
			if p.ControllerName != kuberoutes.ControllerName {
				continue
			}
			c := meta.FindStatusCondition(p.Conditions, string(gatewayv1.RouteConditionAccepted))
			if c != nil && c.ObservedGeneration == gen && c.Status == want {
				got = *c
				return true
			}
		}
		return false
	})
	require.True(t, ok, "route generation %d never got Accepted=%s from %s; status.parents: %+v",
		gen, want, kuberoutes.ControllerName, last)
	return got
}

// pollUntil calls cond every interval until it is true (true) or timeout
// passes (false).
func pollUntil(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// waitBothServe sends batches of requests until one is answered by both
// east and west: both exports have reached north's gateway.
func waitBothServe(t *testing.T, client *http.Client, url string, timeout time.Duration) {
	t.Helper()
	var counts map[string]int
	ok := pollUntil(timeout, 100*time.Millisecond, func() bool {
		counts = map[string]int{}
		for range 20 {
			c, err := get(context.Background(), client, url)
			if err != nil {
				return false
			}
			counts[c]++
		}
		return counts["east"] > 0 && counts["west"] > 0
	})
	require.True(t, ok, "north's requests never reached both east and west: last batch %v", counts)
}

// waitWestDominates sends batches of 20 requests until one has at least
// 14 answers from west (under the old 90/10 split, a chance of about
// 1e-10), and returns the time from start to the end of that batch.
func waitWestDominates(t *testing.T, client *http.Client, url string, start time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	var counts map[string]int
	var at time.Time
	ok := pollUntil(timeout, 0, func() bool {
		counts = countClusters(t, client, url, 20)
		at = time.Now()
		return counts["west"] >= 14
	})
	require.True(t, ok, "west never answered most requests after the 10/90 update: last batch %v", counts)
	return at.Sub(start)
}
