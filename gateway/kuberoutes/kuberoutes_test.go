package kuberoutes

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/gateway/l7route"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// changeDeadline is how soon Changed must fire after a write (issue 18:
// a new weight takes effect within 2 s of kubectl apply).
const changeDeadline = 2 * time.Second

// routeNamed returns the route called name in routes, or nil.
func routeNamed(routes []*l7route.Route, kind l7route.Kind, name string) *l7route.Route {
	for _, r := range routes {
		if r.Kind == kind && r.Name == name {
			return r
		}
	}
	return nil
}

func weights(r *l7route.Route) []int32 {
	var out []int32
	for _, b := range r.Rules[0].Backends {
		out = append(out, b.Weight)
	}
	return out
}

// TestSourceFollowsRoutes: routes appear, change and disappear in Routes
// within 2 s, with Changed fired each time; routes attached only to a
// Gateway are not read; GRPCRoutes are read too.
// Over 80 lines: one scenario on one apiserver, step by step.
func TestSourceFollowsRoutes(t *testing.T) {
	e := startEnv(t)
	r := e.startReplica(t, "a", catalog)
	src := r.src
	require.Empty(t, src.Routes())

	// Create: the route converted, weights 90/10.
	changed := src.Changed()
	e.createHTTP(t, httpRoute("split", []gatewayv1.ParentReference{serviceParent()}, backend("cart", 90), backend("cart-canary", 10)))
	waitChanged(t, changed, changeDeadline, "create")
	got := routeNamed(src.Routes(), l7route.KindHTTP, "split")
	require.NotNil(t, got)
	require.Equal(t, []l7route.ParentRef{{Service: l7route.ServiceKey{Namespace: ns, Name: "cart"}, Port: 80}}, got.Parents)
	require.Equal(t, []int32{90, 10}, weights(got))
	require.Equal(t, "cart-canary", got.Rules[0].Backends[1].Service.Name)

	// Update the weights: Changed, and the new split.
	changed = src.Changed()
	e.updateHTTP(t, "split", func(hr *gatewayv1.HTTPRoute) {
		hr.Spec.Rules[0].BackendRefs[0].Weight = new(int32(50))
		hr.Spec.Rules[0].BackendRefs[1].Weight = new(int32(50))
	})
	waitChanged(t, changed, changeDeadline, "update")
	waitFor(t, changeDeadline, "weights 50/50", func() error {
		if w := weights(routeNamed(src.Routes(), l7route.KindHTTP, "split")); w[0] != 50 || w[1] != 50 {
			return fmt.Errorf("weights %v", w)
		}
		return nil
	})

	// A route attached only to a Gateway belongs to another controller.
	changed = src.Changed()
	gwParent := gatewayv1.ParentReference{Name: "ingress"}
	e.createHTTP(t, httpRoute("north-south", []gatewayv1.ParentReference{gwParent}, backend("cart", 1)))
	waitChanged(t, changed, changeDeadline, "create of a Gateway route")
	require.Nil(t, routeNamed(src.Routes(), l7route.KindHTTP, "north-south"))

	// A GRPCRoute attached to a ServiceImport.
	changed = src.Changed()
	_, err := e.client.GatewayV1().GRPCRoutes(ns).Create(t.Context(), &gatewayv1.GRPCRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "rpc", Namespace: ns},
		Spec: gatewayv1.GRPCRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Group: new(gatewayv1.Group(l7route.MCSGroup)), Kind: new(gatewayv1.Kind("ServiceImport")), Name: "cart"}}},
			Rules: []gatewayv1.GRPCRouteRule{{BackendRefs: []gatewayv1.GRPCBackendRef{{BackendRef: backend("cart", 1).BackendRef}}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitChanged(t, changed, changeDeadline, "create of a GRPCRoute")
	require.NotNil(t, routeNamed(src.Routes(), l7route.KindGRPC, "rpc"))

	// Delete: Changed, and the route is gone.
	changed = src.Changed()
	require.NoError(t, e.client.GatewayV1().HTTPRoutes(ns).Delete(t.Context(), "split", metav1.DeleteOptions{}))
	waitChanged(t, changed, changeDeadline, "delete")
	require.Nil(t, routeNamed(src.Routes(), l7route.KindHTTP, "split"))
}

// TestStatusWriter: valid routes are Accepted=True, invalid ones
// Accepted=False with the reason, at the route's generation; other
// controllers' entries survive; a wiped status is written again; a second
// replica reaching the same verdicts writes nothing.
// Over 80 lines: one scenario on one apiserver, step by step.
func TestStatusWriter(t *testing.T) {
	e := startEnv(t)
	e.startReplica(t, "a", catalog)
	parent := serviceParent()
	gwParent := gatewayv1.ParentReference{Name: "ingress"}

	// A valid route, also attached to a Gateway whose controller has
	// written its own entry.
	e.createHTTP(t, httpRoute("good", []gatewayv1.ParentReference{gwParent, parent}, backend("cart", 90), backend("cart-canary", 10)))
	e.updateHTTPStatus(t, "good", func(hr *gatewayv1.HTTPRoute) {
		hr.Status.Parents = append([]gatewayv1.RouteParentStatus{{ParentRef: hr.Spec.ParentRefs[0], ControllerName: "example.com/gateway",
			Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: metav1.Now()}}}},
			hr.Status.Parents...)
	})
	hr := e.waitAccepted(t, "good", parent, metav1.ConditionTrue, string(gatewayv1.RouteReasonAccepted))
	require.Len(t, hr.Status.Parents, 2, "the Gateway controller's entry is kept, ours added")
	require.Equal(t, gatewayv1.GatewayController("example.com/gateway"), hr.Status.Parents[0].ControllerName)
	ours := ourParent(hr.Status.Parents, parent)
	require.True(t, meta.IsStatusConditionTrue(ours.Conditions, string(gatewayv1.RouteConditionResolvedRefs)))

	// Invalid: every weight zero; a backend the clusterset does not import.
	e.createHTTP(t, httpRoute("zero", []gatewayv1.ParentReference{parent}, backend("cart", 0), backend("cart-canary", 0)))
	e.waitAccepted(t, "zero", parent, metav1.ConditionFalse, string(gatewayv1.RouteReasonUnsupportedValue))
	e.createHTTP(t, httpRoute("unknown", []gatewayv1.ParentReference{parent}, backend("nope", 1)))
	hr = e.waitAccepted(t, "unknown", parent, metav1.ConditionFalse, string(gatewayv1.RouteReasonBackendNotFound))
	rr := meta.FindStatusCondition(ourParent(hr.Status.Parents, parent).Conditions, string(gatewayv1.RouteConditionResolvedRefs))
	require.Equal(t, metav1.ConditionFalse, rr.Status)
	require.Contains(t, rr.Message, "nope")

	// A valid route made invalid: Accepted=False at generation 2. (Its
	// last good version keeps serving in replica a, but not in a replica
	// started since: the status does not say, so that replicas agree.)
	e.updateHTTP(t, "good", func(hr *gatewayv1.HTTPRoute) {
		hr.Spec.Rules[0].BackendRefs[0].Weight = new(int32(0))
		hr.Spec.Rules[0].BackendRefs[1].Weight = new(int32(0))
	})
	hr = e.waitAccepted(t, "good", parent, metav1.ConditionFalse, string(gatewayv1.RouteReasonUnsupportedValue))
	require.Equal(t, int64(2), hr.Generation)
	require.Contains(t, meta.FindStatusCondition(ourParent(hr.Status.Parents, parent).Conditions, "Accepted").Message, "every weight is zero")
	require.Len(t, hr.Status.Parents, 2)

	// Someone wipes our entries: they are written again.
	e.updateHTTPStatus(t, "good", func(hr *gatewayv1.HTTPRoute) {
		hr.Status.Parents = slices.DeleteFunc(hr.Status.Parents, func(p gatewayv1.RouteParentStatus) bool { return p.ControllerName == ControllerName })
	})
	e.waitAccepted(t, "good", parent, metav1.ConditionFalse, string(gatewayv1.RouteReasonUnsupportedValue))

	// A second replica with the same verdicts: it compares every route's
	// status with its verdict and writes nothing; no resourceVersion moves.
	rvs := resourceVersions(t, e)
	b := e.startReplica(t, "b", catalog)
	waitFor(t, 10*time.Second, "replica b compares every route", func() error {
		if n := b.writer.compared.Load(); n < int64(len(rvs)) {
			return fmt.Errorf("%d compared", n)
		}
		return nil
	})
	require.Zero(t, b.writer.writes.Load(), "replica b wrote statuses replica a had written")
	require.Equal(t, rvs, resourceVersions(t, e))
}

// resourceVersions maps every HTTPRoute of ns to its resourceVersion.
func resourceVersions(t *testing.T, e *env) map[string]string {
	t.Helper()
	list, err := e.client.GatewayV1().HTTPRoutes(ns).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	out := map[string]string{}
	for _, hr := range list.Items {
		out[hr.Name] = hr.ResourceVersion
	}
	return out
}
