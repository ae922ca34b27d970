package l7route

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// An HTTPRoute with one of everything (docs/traffic.md has one like it).
const cartHTTPRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: cart
  namespace: shop
  annotations:
    causeway.dev/retry-non-idempotent: checkout
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: cart
    port: 8080
  - name: public-gateway        # a Gateway: not Causeway's, ignored
  rules:
  - name: canary-header
    matches:
    - headers:
      - name: x-canary
        value: "1"
    backendRefs:
    - name: cart-canary
      port: 8080
  - name: checkout
    matches:
    - path: {type: PathPrefix, value: /checkout}
      method: POST
    backendRefs:
    - group: causeway.dev
      kind: Cluster
      name: east
      weight: 95
    - group: causeway.dev
      kind: Cluster
      name: west
      weight: 5
    timeouts: {request: 2s, backendRequest: 500ms}
    retry: {codes: [503], attempts: 2, backoff: 50ms}
  - name: split
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-route, value: split}]
        remove: [x-debug]
    backendRefs:
    - name: cart
      port: 8080
      weight: 90
    - group: multicluster.x-k8s.io
      kind: ServiceImport
      name: cart-canary
      port: 8080
      weight: 10
      filters:
      - type: ResponseHeaderModifier
        responseHeaderModifier:
          add: [{name: x-canary, value: "true"}]
`

func decodeHTTPRoute(t *testing.T, doc string) *gatewayv1.HTTPRoute {
	t.Helper()
	var hr gatewayv1.HTTPRoute
	require.NoError(t, yaml.UnmarshalStrict([]byte(doc), &hr))
	return &hr
}

func TestFromHTTPRoute(t *testing.T) {
	hr := decodeHTTPRoute(t, cartHTTPRoute)
	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	hr.CreationTimestamp.Time = created
	r, err := FromHTTPRoute(hr)
	require.NoError(t, err)
	require.NoError(t, r.Validate(catalog))
	want := &Route{Kind: KindHTTP, Namespace: "shop", Name: "cart", Created: created,
		Parents: []ParentRef{{Service: cart, Port: 8080}},
		Rules: []Rule{
			{Name: "canary-header",
				Matches:  []Match{{Path: PathMatch{Type: PathPrefix, Value: "/"}, Headers: []ValueMatch{{Type: ValueExact, Name: "x-canary", Value: "1"}}}},
				Backends: []Backend{{Service: cartCanary, Port: 8080, Weight: 1}}},
			{Name: "checkout",
				Matches:  []Match{{Path: PathMatch{Type: PathPrefix, Value: "/checkout"}, Method: "POST"}},
				Backends: []Backend{{Cluster: "east", Weight: 95}, {Cluster: "west", Weight: 5}},
				Timeouts: Timeouts{Request: 2 * time.Second, BackendRequest: 500 * time.Millisecond},
				Retry:    &Retry{Codes: []int{503}, Attempts: 2, Backoff: 50 * time.Millisecond, NonIdempotent: true}},
			{Name: "split",
				Filters: Filters{RequestHeaders: &HeaderModifier{Set: []Header{{"x-route", "split"}}, Remove: []string{"x-debug"}}},
				Backends: []Backend{{Service: cart, Port: 8080, Weight: 90},
					{Service: cartCanary, Port: 8080, Weight: 10, Filters: Filters{ResponseHeaders: &HeaderModifier{Add: []Header{{"x-canary", "true"}}}}}}},
		}}
	require.Equal(t, want, r)
}

func TestFromHTTPRouteErrors(t *testing.T) {
	base := `
metadata: {name: r, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: cart}]
  rules:
`
	tests := []struct {
		name   string
		rules  string
		field  string
		reason Reason
	}{
		{"unsupported filter", `
  - filters: [{type: URLRewrite, urlRewrite: {hostname: x}}]
    backendRefs: [{name: cart, port: 8080}]`, "spec.rules[0].filters[0].type", ReasonUnsupportedValue},
		{"filter without its field", `
  - filters: [{type: RequestHeaderModifier}]
    backendRefs: [{name: cart, port: 8080}]`, "spec.rules[0].filters[0]", ReasonUnsupportedValue},
		{"unknown backend kind", `
  - backendRefs: [{group: example.com, kind: Bucket, name: b}]`, "spec.rules[0].backendRefs[0]", ReasonInvalidKind},
		{"cluster backend with namespace", `
  - backendRefs: [{group: causeway.dev, kind: Cluster, name: east, namespace: shop}]`, "spec.rules[0].backendRefs[0].namespace", ReasonUnsupportedValue},
		{"bad duration", `
  - backendRefs: [{name: cart, port: 8080}]
    timeouts: {request: 1.5s}`, "spec.rules[0].timeouts.request", ReasonUnsupportedValue},
		{"backendRequest over request", `
  - backendRefs: [{name: cart, port: 8080}]
    timeouts: {request: 1s, backendRequest: 2s}`, "spec.rules[0].timeouts.backendRequest", ReasonUnsupportedValue},
		{"zero attempts", `
  - backendRefs: [{name: cart, port: 8080}]
    retry: {attempts: 0}`, "spec.rules[0].retry.attempts", ReasonUnsupportedValue},
		{"session persistence", `
  - backendRefs: [{name: cart, port: 8080}]
    sessionPersistence: {sessionName: s}`, "spec.rules[0].sessionPersistence", ReasonUnsupportedValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := FromHTTPRoute(decodeHTTPRoute(t, base+tt.rules))
			require.NotNil(t, r)
			var re *RouteError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tt.field, re.Fields[0].Field, "%v", err)
			require.Equal(t, tt.reason, re.Fields[0].Reason)
			require.Error(t, r.Validate(nil), "the route keeps its conversion errors")
		})
	}
}

func TestFromHTTPRouteParentsAndDefaults(t *testing.T) {
	hr := decodeHTTPRoute(t, `
metadata: {name: r, namespace: shop}
spec:
  parentRefs:
  - {group: multicluster.x-k8s.io, kind: ServiceImport, name: cart}
  - {kind: Service, name: cart-canary, port: 8080}
  - {group: gateway.networking.k8s.io, kind: Gateway, name: gw}
  rules:
  - timeouts: {request: 0s}
    retry: {}
    backendRefs: [{name: cart, port: 8080}]
`)
	r, err := FromHTTPRoute(hr)
	require.NoError(t, err)
	require.Equal(t, []ParentRef{{Service: cart}, {Service: cartCanary, Port: 8080}}, r.Parents)
	require.Equal(t, Unlimited, r.Rules[0].Timeouts.Request, `"0s" disables the timeout`)
	require.Equal(t, &Retry{}, r.Rules[0].Retry)
	require.Equal(t, int32(1), r.Rules[0].Backends[0].Weight, "weight defaults to 1")

	hr.Spec.ParentRefs = hr.Spec.ParentRefs[2:]
	_, err = FromHTTPRoute(hr)
	var re *RouteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, ReasonNoMatchingParent, re.Fields[0].Reason, "a route with no service parent")
	require.False(t, IsMeshParent(hr.Spec.ParentRefs[0]))
}

func TestRetryAnnotation(t *testing.T) {
	doc := func(v string) string {
		return `
metadata: {name: r, namespace: shop, annotations: {causeway.dev/retry-non-idempotent: "` + v + `"}}
spec:
  parentRefs: [{kind: Service, name: cart}]
  rules:
  - name: a
    matches: [{path: {value: /a}}]
    retry: {}
    backendRefs: [{name: cart, port: 8080}]
  - name: b
    backendRefs: [{name: cart, port: 8080}]
`
	}
	r, err := FromHTTPRoute(decodeHTTPRoute(t, doc("true")))
	require.NoError(t, err)
	require.True(t, r.Rules[0].Retry.NonIdempotent)
	r, err = FromHTTPRoute(decodeHTTPRoute(t, doc("a")))
	require.NoError(t, err)
	require.True(t, r.Rules[0].Retry.NonIdempotent)
	r, err = FromHTTPRoute(decodeHTTPRoute(t, doc("false")))
	require.NoError(t, err)
	require.False(t, r.Rules[0].Retry.NonIdempotent)
	_, err = FromHTTPRoute(decodeHTTPRoute(t, doc("b")))
	require.ErrorContains(t, err, `rule "b" has no retry stanza`)
	_, err = FromHTTPRoute(decodeHTTPRoute(t, doc("nope")))
	require.ErrorContains(t, err, `no rule is named "nope"`)
}

func TestFromGRPCRoute(t *testing.T) {
	var gr gatewayv1.GRPCRoute
	require.NoError(t, yaml.UnmarshalStrict([]byte(`
metadata: {name: g, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: cart, port: 8081}]
  rules:
  - matches:
    - method: {service: shop.Cart, method: Get}
      headers: [{name: x-canary, value: "1"}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: x-via, value: causeway}]}
    backendRefs: [{name: cart-canary, port: 8080}]
  - matches: [{method: {type: RegularExpression, service: "shop\\..*"}}]
    backendRefs: [{group: causeway.dev, kind: Cluster, name: west}]
`), &gr))
	r, err := FromGRPCRoute(&gr)
	require.NoError(t, err)
	require.NoError(t, r.Validate(catalog))
	require.Equal(t, KindGRPC, r.Kind)
	require.Equal(t, &GRPCMatch{Type: ValueExact, Service: "shop.Cart", Method: "Get"}, r.Rules[0].Matches[0].GRPC)
	require.Equal(t, &GRPCMatch{Type: ValueRegularExpression, Service: `shop\..*`}, r.Rules[1].Matches[0].GRPC)
	require.NotNil(t, r.Rules[0].Filters.ResponseHeaders)

	snap := snapshotOf(t, nil, r)
	call := withMethod(get("/shop.Cart/Get", "content-type", "application/grpc", "x-canary", "1"), "POST")
	sel, err := snap.Select(cart, 8081, call)
	require.NoError(t, err)
	require.Equal(t, Target{Service: cartCanary, Port: 8080}, sel.Target)
	sel, err = snap.Select(cart, 8081, withMethod(get("/shop.Orders/List", "content-type", "application/grpc"), "POST"))
	require.NoError(t, err)
	require.Equal(t, Target{Service: cart, Port: 8081, Cluster: "west"}, sel.Target)

	gr.Annotations = map[string]string{AnnotationRetryNonIdempotent: "true"}
	_, err = FromGRPCRoute(&gr)
	require.ErrorContains(t, err, "GRPCRoute has no retry stanza")
}
