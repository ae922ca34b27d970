package l7route

import (
	"testing"

	"github.com/stretchr/testify/require"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// A static file with one of everything (docs/traffic.md has one like it).
const staticExample = `
version: 1
httpRoutes:
- metadata:
    namespace: demo
    name: echo-canary
  spec:
    parentRefs:
    - {kind: Service, name: echo, port: 8081}
    rules:
    - matches:
      - headers: [{name: x-canary, value: "1"}]
      backendRefs:
      - {group: causeway.dev, kind: Cluster, name: west}
    - backendRefs:
      - {group: causeway.dev, kind: Cluster, name: east, weight: 95}
      - {group: causeway.dev, kind: Cluster, name: west, weight: 5}
      timeouts: {request: 500ms}
      retry: {codes: [502, 503], attempts: 2, backoff: 25ms}
- apiVersion: gateway.networking.k8s.io/v1
  kind: HTTPRoute
  metadata: {namespace: demo, name: clock-split}
  spec:
    parentRefs: [{group: "", kind: Service, name: clock}]
    rules:
    - backendRefs:
      - {name: clock, port: 8081, weight: 90}
      - {name: clock-canary, port: 8081, weight: 10}
grpcRoutes:
- metadata: {namespace: demo, name: echo-grpc}
  spec:
    parentRefs: [{kind: Service, name: echo, port: 9090}]
    rules:
    - matches: [{method: {service: demo.Echo}}]
      backendRefs: [{name: echo, port: 9090}]
`

func TestParseStatic(t *testing.T) {
	routes, err := ParseStatic([]byte(staticExample))
	require.NoError(t, err)
	require.Len(t, routes, 3)
	require.Equal(t, RouteKey{Kind: KindHTTP, Namespace: "demo", Name: "echo-canary"}, routes[0].Key())
	require.Equal(t, []Backend{{Cluster: "east", Weight: 95}, {Cluster: "west", Weight: 5}}, routes[0].Rules[1].Backends)
	require.Equal(t, []int{502, 503}, routes[0].Rules[1].Retry.Codes)
	require.True(t, routes[0].Created.IsZero())
	require.Equal(t, KindGRPC, routes[2].Kind)

	echo := ServiceKey{Namespace: "demo", Name: "echo"}
	lookup := lookupOf(map[ServiceKey]ServiceInfo{
		echo:                               {Ports: []int32{8080, 8081, 9090}, Clusters: []string{"east", "west"}},
		{Namespace: "demo", Name: "clock"}: {Ports: []int32{8081}, Clusters: []string{"east"}},
	})
	tbl := NewTable(&seqRand{seq: []int64{96}})
	st := tbl.Update(routes, lookup)
	require.NoError(t, st[0].Err)
	require.ErrorContains(t, st[1].Err, "no imported service demo/clock-canary", "references are checked by the table")
	sel, err := tbl.Snapshot().Select(echo, 8081, get("/"))
	require.NoError(t, err)
	require.Equal(t, Target{Service: echo, Port: 8081, Cluster: "west"}, sel.Target, "draw 96 of 100 is west's 5")
}

func TestParseStaticErrors(t *testing.T) {
	route := func(spec string) string {
		return "version: 1\nhttpRoutes:\n- metadata: {namespace: demo, name: r}\n  spec:\n" + spec
	}
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"no version", "httpRoutes: []", "version: required"},
		{"future version", "version: 2", "version: 2 is not supported"},
		{"unknown top-level field", "version: 1\nroutes: []", `unknown field "routes"`},
		{"unknown field in a spec", route("    parentRefs: [{kind: Service, name: echo}]\n    rules:\n    - backendRef: []\n"),
			`line 7: httpRoutes[0] (demo/r).spec.rules[0]: unknown field "backendRef" (did you mean backendRefs?)`},
		{"status is not input", "version: 1\nhttpRoutes:\n- metadata: {namespace: demo, name: r}\n  status: {}\n", `unknown field "status"`},
		{"wrong type", route("    parentRefs: [{kind: Service, name: echo, port: http}]\n"), "httpRoutes[0] (demo/r).spec.parentRefs[0].port: want a whole number"},
		{"invalid route", route("    parentRefs: [{kind: Service, name: echo}]\n    rules:\n    - backendRefs: [{name: echo, port: 80, weight: 0}]\n"),
			"httpRoutes[0]: invalid HTTPRoute demo/r: spec.rules[0].backendRefs: every weight is zero"},
		{"bad regex", route("    parentRefs: [{kind: Service, name: echo}]\n    rules:\n    - matches: [{path: {type: RegularExpression, value: '(('}}]\n      backendRefs: [{name: echo, port: 80}]\n"),
			"spec.rules[0].matches[0].path.value: invalid regular expression"},
		{"wrong kind", "version: 1\nhttpRoutes:\n- kind: GRPCRoute\n  metadata: {namespace: demo, name: r}\n  spec: {parentRefs: [{kind: Service, name: echo}], rules: [{backendRefs: [{name: echo, port: 80}]}]}\n",
			`httpRoutes[0]: kind: "GRPCRoute" in a list of HTTPRoutes`},
		{"listed twice", "version: 1\nhttpRoutes:\n" +
			"- metadata: {namespace: demo, name: r}\n  spec: {parentRefs: [{kind: Service, name: echo}], rules: [{backendRefs: [{name: echo, port: 80}]}]}\n" +
			"- metadata: {namespace: demo, name: r}\n  spec: {parentRefs: [{kind: Service, name: echo}], rules: [{backendRefs: [{name: echo, port: 80}]}]}\n",
			"httpRoutes[1]: HTTPRoute demo/r is also httpRoutes[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseStatic([]byte(tt.doc))
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestIsMeshParent(t *testing.T) {
	ptr := func(s string) *string { return &s }
	ref := func(group, kind *string) gatewayv1.ParentReference {
		r := gatewayv1.ParentReference{Name: "x"}
		if group != nil {
			g := gatewayv1.Group(*group)
			r.Group = &g
		}
		if kind != nil {
			k := gatewayv1.Kind(*kind)
			r.Kind = &k
		}
		return r
	}
	tests := []struct {
		group, kind *string
		want        bool
	}{
		{ptr(""), ptr("Service"), true},
		{nil, ptr("Service"), true},
		{ptr(MCSGroup), ptr("ServiceImport"), true},
		{ptr(gatewayv1.GroupName), ptr("Service"), false},
		{nil, nil, false},
		{ptr(gatewayv1.GroupName), ptr("Gateway"), false},
		{ptr(""), ptr("ServiceImport"), false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, IsMeshParent(ref(tt.group, tt.kind)), "group %v kind %v", tt.group, tt.kind)
	}
}
