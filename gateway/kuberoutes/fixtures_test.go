package kuberoutes

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/gateway/l7route"
	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

const ns = "demo"

// env is a real kube-apiserver serving the experimental HTTPRoute and
// GRPCRoute CRDs, with namespace demo.
type env struct {
	kube   *kubetest.Cluster
	client gatewayclient.Interface
}

func startEnv(t *testing.T) *env {
	t.Helper()
	c := kubetest.Start(t, kubetest.Options{SkipMCSCRDs: true})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, c.InstallGatewayAPICRDs(ctx, kubetest.GatewayAPIExperimental, "httproutes", "grpcroutes"))
	gc, err := gatewayclient.NewForConfig(c.RESTConfig)
	require.NoError(t, err)
	_, err = c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitFor(t, 30*time.Second, "routes served", func() error {
		if _, err := gc.GatewayV1().HTTPRoutes(ns).List(ctx, metav1.ListOptions{}); err != nil {
			return err
		}
		_, err := gc.GatewayV1().GRPCRoutes(ns).List(ctx, metav1.ListOptions{})
		return err
	})
	return &env{kube: c, client: gc}
}

// replica is one gateway replica's route machinery: a Source, a
// StatusWriter and the validation loop the gateway runs (runRoutes).
type replica struct {
	src    *Source
	writer *StatusWriter
	// reports counts the ReportStatus calls so far.
	mu      sync.Mutex
	reports int
}

// startReplica runs a replica against e until the test ends.
func (e *env) startReplica(t *testing.T, name string, lookup l7route.Lookup) *replica {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", name)
	src, err := NewSource(SourceConfig{Client: e.client, Log: log})
	require.NoError(t, err)
	w, err := NewStatusWriter(StatusConfig{Source: src, Log: log})
	require.NoError(t, err)
	r := &replica{src: src, writer: w}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, src.Run(ctx)) })
	wg.Go(func() { require.NoError(t, w.Run(ctx)) })
	wg.Go(func() { r.validate(ctx, lookup) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	select {
	case <-src.Synced():
	case <-time.After(30 * time.Second):
		t.Fatalf("replica %s: informers did not sync", name)
	}
	return r
}

// validate is gateway runRoutes in short: validate the routes on every
// change and report the statuses.
func (r *replica) validate(ctx context.Context, lookup l7route.Lookup) {
	table := l7route.NewTable(nil)
	for {
		changed := r.src.Changed()
		r.writer.ReportStatus(ctx, table.Update(r.src.Routes(), lookup))
		r.mu.Lock()
		r.reports++
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// catalog answers validation: demo/cart and demo/cart-canary, port 80,
// exported by east and west.
func catalog(k l7route.ServiceKey) (l7route.ServiceInfo, bool) {
	if k.Namespace == ns && (k.Name == "cart" || k.Name == "cart-canary") {
		return l7route.ServiceInfo{Ports: []int32{80}, Clusters: []string{"east", "west"}}, true
	}
	return l7route.ServiceInfo{}, false
}

// serviceParent is a GAMMA parentRef to demo/cart port 80.
func serviceParent() gatewayv1.ParentReference {
	return gatewayv1.ParentReference{Group: new(gatewayv1.Group("")), Kind: new(gatewayv1.Kind("Service")),
		Name: "cart", Port: new(gatewayv1.PortNumber(80))}
}

// backend is a Service backendRef of port 80.
func backend(name string, weight int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{Weight: new(weight),
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: new(gatewayv1.PortNumber(80))}}}
}

// httpRoute is an HTTPRoute with parents and one rule over backends.
func httpRoute(name string, parents []gatewayv1.ParentReference, backends ...gatewayv1.HTTPBackendRef) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: parents},
			Rules:           []gatewayv1.HTTPRouteRule{{BackendRefs: backends}},
		},
	}
}

func (e *env) createHTTP(t *testing.T, hr *gatewayv1.HTTPRoute) *gatewayv1.HTTPRoute {
	t.Helper()
	out, err := e.client.GatewayV1().HTTPRoutes(ns).Create(t.Context(), hr, metav1.CreateOptions{})
	require.NoError(t, err)
	return out
}

// updateHTTP applies mutate to route name, retrying on conflicts (the
// status writers write the same objects).
func (e *env) updateHTTP(t *testing.T, name string, mutate func(*gatewayv1.HTTPRoute)) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		hr := e.getHTTP(t, name)
		mutate(hr)
		_, err := e.client.GatewayV1().HTTPRoutes(ns).Update(t.Context(), hr, metav1.UpdateOptions{})
		return err
	}))
}

// updateHTTPStatus applies mutate to route name's status, retrying on
// conflicts.
func (e *env) updateHTTPStatus(t *testing.T, name string, mutate func(*gatewayv1.HTTPRoute)) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		hr := e.getHTTP(t, name)
		mutate(hr)
		_, err := e.client.GatewayV1().HTTPRoutes(ns).UpdateStatus(t.Context(), hr, metav1.UpdateOptions{})
		return err
	}))
}

func (e *env) getHTTP(t *testing.T, name string) *gatewayv1.HTTPRoute {
	t.Helper()
	hr, err := e.client.GatewayV1().HTTPRoutes(ns).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return hr
}

// ourParent returns the status entry of ControllerName for ref, if any.
func ourParent(parents []gatewayv1.RouteParentStatus, ref gatewayv1.ParentReference) *gatewayv1.RouteParentStatus {
	for i := range parents {
		p := &parents[i]
		if p.ControllerName == ControllerName && p.ParentRef.Name == ref.Name &&
			derefOr(p.ParentRef.Kind, "") == derefOr(ref.Kind, "") && derefOr(p.ParentRef.Port, 0) == derefOr(ref.Port, 0) {
			return p
		}
	}
	return nil
}

func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// waitAccepted waits until route name's entry for ref says Accepted=status
// with reason, at the route's current generation, and returns the route.
func (e *env) waitAccepted(t *testing.T, name string, ref gatewayv1.ParentReference, status metav1.ConditionStatus, reason string) *gatewayv1.HTTPRoute {
	t.Helper()
	var hr *gatewayv1.HTTPRoute
	waitFor(t, 10*time.Second, fmt.Sprintf("%s Accepted=%s %s", name, status, reason), func() error {
		hr = e.getHTTP(t, name)
		p := ourParent(hr.Status.Parents, ref)
		if p == nil {
			return fmt.Errorf("no status entry: %+v", hr.Status.Parents)
		}
		c := meta.FindStatusCondition(p.Conditions, string(gatewayv1.RouteConditionAccepted))
		if c == nil || c.Status != status || c.Reason != reason || c.ObservedGeneration != hr.Generation {
			return fmt.Errorf("generation %d, conditions %+v", hr.Generation, p.Conditions)
		}
		return nil
	})
	return hr
}

// waitFor polls cond until it returns nil, failing t after d with cond's
// last error.
func waitFor(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, cond())
	}, d, 20*time.Millisecond, "waiting for %s", what)
}

// waitChanged fails t unless ch is closed within d.
func waitChanged(t testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("Changed did not fire within %s of %s", d, what)
	}
}
