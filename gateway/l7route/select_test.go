package l7route

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSelectPrecedence(t *testing.T) {
	old := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	withHeaders := func(m Match, kv ...string) Match {
		for i := 0; i+1 < len(kv); i += 2 {
			m.Headers = append(m.Headers, ValueMatch{Name: kv[i], Value: kv[i+1]})
		}
		return m
	}
	a := httpRoute("a",
		Rule{Name: "exact", Matches: []Match{exact("/api/v1")}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}},
		Rule{Name: "long", Matches: []Match{prefix("/api/v1/")}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}},
		Rule{Name: "short", Matches: []Match{prefix("/api")}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}},
		Rule{Name: "regex", Matches: []Match{regex(`/api/v[0-9]+/items/[0-9]+`)}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}},
		Rule{Name: "post", Matches: []Match{{Path: PathMatch{Type: PathPrefix, Value: "/api"}, Method: "POST"}}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}},
		Rule{Name: "canary", Matches: []Match{withHeaders(prefix("/api"), "x-canary", "1")}, Backends: []Backend{{Service: cartCanary, Port: 8080, Weight: 1}}},
		Rule{Name: "two-headers", Matches: []Match{withHeaders(prefix("/api"), "x-canary", "1", "x-user", "ann")}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}},
		Rule{Name: "query", Matches: []Match{{Path: PathMatch{Type: PathPrefix, Value: "/api"},
			QueryParams: []ValueMatch{{Name: "debug", Value: "1"}}}}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}},
		Rule{Name: "catch-all", Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}},
	)
	a.Created = old
	// b ties with a's "short" rule on /api: the older route (a) wins;
	// b's /shop ties with c's /shop, both new: namespace/name decides.
	b := httpRoute("b", to(cart, prefix("/api")), Rule{Name: "b-shop", Matches: []Match{prefix("/shop")}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}})
	b.Created = old.Add(time.Hour)
	c := httpRoute("c", Rule{Name: "c-shop", Matches: []Match{prefix("/shop")}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}})
	c.Created = b.Created
	// d attaches only to port 8081.
	d := httpRoute("d", Rule{Name: "d-port", Matches: []Match{exact("/only-8081")}, Backends: []Backend{{Service: cart, Port: 8081, Weight: 1}}})
	d.Parents[0].Port = 8081
	snap := snapshotOf(t, nil, c, d, b, a)

	post := get("/api/x")
	post.Method = "POST"
	tests := []struct {
		name string
		req  *Request
		port int32
		rule string
	}{
		{"exact beats prefixes", get("/api/v1"), 8080, "exact"},
		{"regex beats prefixes", get("/api/v1/items/42"), 8080, "regex"},
		{"longest prefix", get("/api/v1/things"), 8080, "long"},
		{"prefix is element-wise", get("/api/v10"), 8080, "short"},
		{"method beats headers", withMethod(get("/api/x", "x-canary", "1"), "POST"), 8080, "post"},
		{"method", post, 8080, "post"},
		{"header", get("/api/x", "X-Canary", "1"), 8080, "canary"},
		{"more headers win", get("/api/x", "x-canary", "1", "x-user", "ann"), 8080, "two-headers"},
		{"header value is exact", get("/api/x", "x-canary", "10"), 8080, "short"},
		{"query param", get("/api/x?debug=1"), 8080, "query"},
		{"headers beat query params", get("/api/x?debug=1", "x-canary", "1"), 8080, "canary"},
		{"older route wins a tie", get("/api/zzz"), 8080, "short"},
		{"name breaks a creation tie", get("/shop/1"), 8080, "b-shop"},
		{"prefix does not match a longer segment", get("/apix"), 8080, "catch-all"},
		{"port-scoped route", get("/only-8081"), 8081, "d-port"},
		{"port-scoped route elsewhere", get("/only-8081"), 8080, "catch-all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := snap.Select(cart, tt.port, tt.req)
			require.NoError(t, err)
			require.Equal(t, tt.rule, sel.Rule.Name)
		})
	}
}

func withMethod(r *Request, m string) *Request {
	r.Method = m
	return r
}

func TestSelectTargetsAndErrors(t *testing.T) {
	route := httpRoute("r",
		Rule{Name: "pinned", Matches: []Match{prefix("/pinned")}, Backends: []Backend{{Cluster: "west", Weight: 1}}},
		Rule{Name: "off", Matches: []Match{prefix("/off")}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}},
	)
	snap := snapshotOf(t, nil, route)
	// Make "off" a rule without weights after validation (a hand-built
	// route in a snapshot): Select answers ErrNoBackend.
	route.Rules[1].Backends[0].Weight = 0

	sel, err := snap.Select(cart, 8081, get("/pinned/x"))
	require.NoError(t, err)
	require.Equal(t, Target{Service: cart, Port: 8081, Cluster: "west"}, sel.Target, "a Cluster backend takes the addressed service and port")

	_, err = snap.Select(cart, 8080, get("/nowhere"))
	require.ErrorIs(t, err, ErrNoRoute)

	sel, err = snap.Select(cart, 8080, get("/off"))
	require.ErrorIs(t, err, ErrNoBackend)
	require.Equal(t, "off", sel.Rule.Name, "the selection names the rule for metrics")

	other := ServiceKey{Namespace: "shop", Name: "other"}
	sel, err = snap.Select(other, 9090, get("/anything"))
	require.NoError(t, err)
	require.Nil(t, sel.Route)
	require.Equal(t, Target{Service: other, Port: 9090}, sel.Target, "no route attached: the service itself")
	require.Equal(t, EffectiveRetry(nil), sel.Retry())
	require.False(t, snap.Attached(other, 9090))
}

func TestSelectGRPC(t *testing.T) {
	grpcRule := func(name string, g GRPCMatch, headers ...ValueMatch) Rule {
		return Rule{Name: name, Matches: []Match{{GRPC: &g, Headers: headers}}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}}
	}
	gr := &Route{Kind: KindGRPC, Namespace: "shop", Name: "g", Parents: []ParentRef{{Service: cart}}, Rules: []Rule{
		grpcRule("exact", GRPCMatch{Service: "shop.Cart", Method: "Get"}),
		grpcRule("service", GRPCMatch{Service: "shop.Cart"}),
		grpcRule("method", GRPCMatch{Method: "Health"}),
		grpcRule("regex", GRPCMatch{Type: ValueRegularExpression, Service: `shop\.(Orders|Billing)`}),
		grpcRule("service-header", GRPCMatch{Service: "shop.Cart"}, ValueMatch{Name: "x-canary", Value: "1"}),
	}}
	hr := httpRoute("h", Rule{Name: "http", Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}})
	snap := snapshotOf(t, nil, gr, hr)
	call := func(path string, kv ...string) *Request {
		return withMethod(get(path, append([]string{"content-type", "application/grpc"}, kv...)...), "POST")
	}
	tests := []struct {
		name string
		req  *Request
		rule string
	}{
		{"service and method", call("/shop.Cart/Get"), "exact"},
		{"service", call("/shop.Cart/Put"), "service"},
		{"service with header", call("/shop.Cart/Put", "x-canary", "1"), "service-header"},
		{"service beats header count", call("/shop.Cart/Get", "x-canary", "1"), "exact"},
		{"method only", call("/other.Svc/Health"), "method"},
		{"service chars beat method chars", call("/shop.Cart/Health"), "service"},
		{"regex", call("/shop.Billing/Charge"), "regex"},
		{"regex is anchored", call("/shop.BillingX/Charge"), "http"},
		{"no GRPCRoute matches: HTTPRoutes", call("/x.Y/Z"), "http"},
		{"not a gRPC call: HTTPRoutes only", get("/shop.Cart/Get"), "http"},
		{"grpc+proto content type", withMethod(get("/shop.Cart/Get", "content-type", "application/grpc+proto"), "POST"), "exact"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := snap.Select(cart, 8080, tt.req)
			require.NoError(t, err)
			require.Equal(t, tt.rule, sel.Rule.Name)
		})
	}
}

func TestMatchHeadersAndQuery(t *testing.T) {
	m := Match{
		Path:        PathMatch{Type: PathRegularExpression, Value: `/v[12]/.*`},
		Headers:     []ValueMatch{{Type: ValueRegularExpression, Name: "x-tenant", Value: "a|b"}},
		QueryParams: []ValueMatch{{Name: "Mode", Value: "fast"}},
	}
	c, _, err := compileHTTP(m)
	require.Nil(t, err)
	tests := []struct {
		name string
		req  *Request
		want bool
	}{
		{"all match", get("/v1/x?Mode=fast", "X-Tenant", "a"), true},
		{"repeated header joins values", get("/v1/x?Mode=fast", "x-tenant", "a", "x-tenant", "b"), false},
		{"regex anchored", get("/v1/x?Mode=fast", "x-tenant", "ab"), false},
		{"query name is case-sensitive", get("/v1/x?mode=fast", "x-tenant", "a"), false},
		{"first query value counts", get("/v1/x?Mode=fast&Mode=slow", "x-tenant", "b"), true},
		{"missing header", get("/v1/x?Mode=fast"), false},
		{"path regex anchored", get("/x/v1/y?Mode=fast", "x-tenant", "a"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, c.matches(tt.req))
		})
	}
}

func TestPathPrefix(t *testing.T) {
	tests := []struct {
		prefix, path string
		want         bool
	}{
		{"/foo", "/foo", true},
		{"/foo", "/foo/", true},
		{"/foo", "/foo/bar", true},
		{"/foo", "/foobar", false},
		{"/foo/", "/foo", true},
		{"/foo/", "/foo/bar", true},
		{"/foo/", "/foobar", false},
		{"/", "/anything", true},
		{"/", "/", true},
	}
	for _, tt := range tests {
		c, _, err := compileHTTP(prefix(tt.prefix))
		require.Nil(t, err)
		require.Equal(t, tt.want, c.matches(get(tt.path)), "prefix %q path %q", tt.prefix, tt.path)
	}
}

func TestPickBackend(t *testing.T) {
	bs := []Backend{{Weight: 90}, {Weight: 0}, {Weight: 10}}
	tests := []struct {
		n    int64
		want int
	}{{0, 0}, {89, 0}, {90, 2}, {99, 2}}
	for _, tt := range tests {
		require.Equal(t, tt.want, PickBackend(bs, &seqRand{seq: []int64{tt.n}}), "draw %d", tt.n)
	}
	require.Equal(t, -1, PickBackend([]Backend{{Weight: 0}, {Weight: 0}}, nil))
	require.Equal(t, -1, PickBackend(nil, nil))

	// The shares hold over many picks with a real source.
	rnd := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, len(bs))
	const n = 20000
	for range n {
		counts[PickBackend(bs, rnd)]++
	}
	require.Zero(t, counts[1], "weight 0 gets nothing")
	require.InDelta(t, 0.9, float64(counts[0])/n, 0.01)
}

func TestSelectionFilters(t *testing.T) {
	rule := Rule{
		Filters: Filters{
			RequestHeaders:  &HeaderModifier{Set: []Header{{"x-route", "r"}}, Add: []Header{{"x-trace", "1"}}, Remove: []string{"x-secret"}},
			ResponseHeaders: &HeaderModifier{Set: []Header{{"x-served-by", "causeway"}}},
		},
		Backends: []Backend{{Service: cart, Port: 8080, Weight: 1, Filters: Filters{RequestHeaders: &HeaderModifier{Set: []Header{{"x-route", "backend"}}}}}},
	}
	snap := snapshotOf(t, nil, httpRoute("f", rule))
	sel, err := snap.Select(cart, 8080, get("/"))
	require.NoError(t, err)
	h := get("/", "x-secret", "s", "x-trace", "0").Header
	sel.EditRequest(h)
	require.Equal(t, "backend", h.Get("x-route"), "backend filters apply after the rule's")
	require.Equal(t, []string{"0", "1"}, h.Values("x-trace"))
	require.Empty(t, h.Values("x-secret"))
	resp := get("/").Header
	sel.EditResponse(resp)
	require.Equal(t, "causeway", resp.Get("x-served-by"))
	require.True(t, errors.Is(ErrNoRoute, ErrNoRoute))
}
