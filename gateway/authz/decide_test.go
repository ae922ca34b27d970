package authz

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	frontend = who("north", "web", "frontend")
	batch    = who("north", "batch", "jobs")
	westWeb  = who("west", "web", "frontend")
	northAny = who("north", "", "")
)

func get(path string) *Request { return &Request{Method: "GET", Path: path} }

func TestSourceWildcards(t *testing.T) {
	for _, tc := range []struct {
		src  Source
		p    Principal
		want bool
	}{
		{src("north", "", ""), frontend, true},
		{src("north", "", ""), northAny, true},
		{src("north", "", ""), westWeb, false},
		{src("*", "", ""), westWeb, true},
		{src("*", "", ""), northAny, true},
		{src("", "*", ""), northAny, false},
		{src("", "*", ""), frontend, true},
		{src("", "", "*"), northAny, false},
		{src("nor*", "", ""), frontend, true},
		{src("*th", "", ""), frontend, true},
		{src("*th", "", ""), westWeb, false},
		{src("", "we*", "front*"), frontend, true},
		{src("", "we*", "front*"), westWeb, true},
		{src("north", "web", "*end"), frontend, true},
		{src("north", "web", "frontend-2"), frontend, false},
		{src("north", "batch", "jobs"), frontend, false},
		{src("north", "web", "frontend"), frontend, true},
		{src("", "", "frontend"), westWeb, true},
	} {
		t.Run(fmt.Sprintf("%+v %s", tc.src, tc.p), func(t *testing.T) {
			tbl := table(t, newClock(), Set{Policies: []*AuthorizationPolicy{policy("p", "cart", ActionAllow, from(tc.src))}})
			d := tbl.Snapshot().Decide(cart, 8080, tc.p, nil)
			require.Equal(t, tc.want, d.Allowed, "%+v", d)
		})
	}
}

func TestDecide(t *testing.T) {
	allowWeb := policy("allow-web", "cart", ActionAllow, from(src("north", "web", "*")))
	denyBatch := policy("deny-batch", "cart", ActionDeny, from(src("*", "batch", "")))
	allowBatch := policy("allow-batch", "cart", ActionAllow, from(src("north", "batch", "jobs")))
	readOnly := onPorts(policy("read-only", "cart", ActionAllow, from(src("west", "", "")).to([]string{"GET", "HEAD"}, "/items/*", "/healthz")), 9090)
	denyAdmin := onPorts(policy("deny-admin", "cart", ActionDeny, from(src("*", "", "")).to(nil, "/admin*")), 9090)
	onlyStock := policy("stock", "stock", ActionDeny, from(src("west", "", "")))
	all := []*AuthorizationPolicy{allowWeb, denyBatch, allowBatch, readOnly, denyAdmin, onlyStock}

	for _, tc := range []struct {
		name     string
		def      Action
		svc      ServiceKey
		port     int32
		p        Principal
		l7       *Request
		allowed  bool
		reason   DecisionReason
		byPolicy string
	}{
		{"allowed by policy", "", cart, 8080, frontend, nil, true, ReasonAllowedByPolicy, "shop/allow-web"},
		{"deny wins over allow", "", cart, 8080, batch, nil, false, ReasonDeniedByPolicy, "shop/deny-batch"},
		{"no allow matched", "", cart, 8080, westWeb, nil, false, ReasonNoAllowMatch, ""},
		{"anonymous not a workload", "", cart, 8080, northAny, nil, false, ReasonNoAllowMatch, ""},
		{"unselected port uses service-wide policies", "", cart, 7070, frontend, nil, true, ReasonAllowedByPolicy, "shop/allow-web"},
		{"port policy plus service-wide", "", cart, 9090, frontend, get("/x"), true, ReasonAllowedByPolicy, "shop/allow-web"},
		{"L7 allowed path", "", cart, 9090, westWeb, get("/items/1"), true, ReasonAllowedByPolicy, "shop/read-only"},
		{"L7 exact path", "", cart, 9090, westWeb, &Request{Method: "HEAD", Path: "/healthz"}, true, ReasonAllowedByPolicy, "shop/read-only"},
		{"L7 prefix is a string prefix", "", cart, 9090, westWeb, get("/items"), false, ReasonNoAllowMatch, ""},
		{"L7 wrong method", "", cart, 9090, westWeb, &Request{Method: "POST", Path: "/items/1"}, false, ReasonNoAllowMatch, ""},
		{"L7 exact is exact", "", cart, 9090, westWeb, get("/healthz/x"), false, ReasonNoAllowMatch, ""},
		{"L7 deny path", "", cart, 9090, frontend, get("/admin/users"), false, ReasonDeniedByPolicy, "shop/deny-admin"},
		{"L4 flow: allow rule with to grants nothing", "", cart, 9090, westWeb, nil, false, ReasonDeniedByPolicy, "shop/deny-admin"},
		{"L4 flow: deny rule with to refuses", "", cart, 9090, frontend, nil, false, ReasonDeniedByPolicy, "shop/deny-admin"},
		{"only deny policies: default allow", "", stock, 8080, frontend, nil, true, ReasonDefaultAllow, ""},
		{"only deny policies: default deny", ActionDeny, stock, 8080, frontend, nil, false, ReasonDefaultDeny, ""},
		{"only deny policies: denied", "", stock, 8080, westWeb, nil, false, ReasonDeniedByPolicy, "shop/stock"},
		{"no policy: default allow", ActionAllow, ServiceKey{Namespace: "shop", Name: "other"}, 80, westWeb, nil, true, ReasonDefaultAllow, ""},
		{"no policy: default deny", ActionDeny, ServiceKey{Namespace: "shop", Name: "other"}, 80, westWeb, nil, false, ReasonDefaultDeny, ""},
		{"same name other namespace", "", ServiceKey{Namespace: "dev", Name: "cart"}, 8080, batch, nil, true, ReasonDefaultAllow, ""},
		{"no principal", "", cart, 8080, Principal{}, nil, false, ReasonNoPrincipal, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := table(t, newClock(), Set{DefaultAction: tc.def, Policies: all})
			d := tbl.Snapshot().Decide(tc.svc, tc.port, tc.p, tc.l7)
			require.Equal(t, tc.allowed, d.Allowed, "%+v", d)
			require.Equal(t, tc.reason, d.Reason)
			require.Equal(t, tc.byPolicy, d.Policy)
			require.Equal(t, tc.byPolicy == "", d.Rule == -1)
		})
	}
	snap := table(t, newClock(), Set{Policies: all}).Snapshot()
	require.Equal(t, []string{"shop/deny-admin", "shop/deny-batch", "shop/allow-batch", "shop/allow-web", "shop/read-only"}, snap.Applicable(cart, 9090))
	require.Equal(t, []string{"shop/deny-batch", "shop/allow-batch", "shop/allow-web"}, snap.Applicable(cart, 8080))
	require.Nil(t, snap.Applicable(ServiceKey{Namespace: "shop", Name: "other"}, 80))
}

func TestDecideRuleIndex(t *testing.T) {
	p := policy("p", "cart", ActionAllow, from(src("west", "", "")), from(src("north", "", "")))
	d := table(t, newClock(), Set{Policies: []*AuthorizationPolicy{p}}).Snapshot().Decide(cart, 8080, frontend, nil)
	require.Equal(t, Decision{Allowed: true, Reason: ReasonAllowedByPolicy, Policy: "shop/p", Rule: 1}, d)
}

// bigPolicy is an Allow policy of n rules, the caller matching the last.
func bigPolicy(n int) *AuthorizationPolicy {
	var rules []Rule
	for i := range n - 1 {
		rules = append(rules, from(src(fmt.Sprint("c", i), "web", "frontend")))
	}
	return policy("big", "cart", ActionAllow, append(rules, from(src("north", "web", "front*")))...)
}

func TestDecideDoesNotAllocate(t *testing.T) {
	snap := table(t, newClock(), Set{Policies: []*AuthorizationPolicy{bigPolicy(100)}}).Snapshot()
	req := get("/x")
	allocs := testing.AllocsPerRun(100, func() {
		if !snap.Decide(cart, 8080, frontend, req).Allowed {
			t.Fatal("refused")
		}
	})
	require.Zero(t, allocs)
}

func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{0, 1, 100} {
		b.Run(fmt.Sprint(n, "rules"), func(b *testing.B) {
			set := Set{}
			if n > 0 {
				set.Policies = []*AuthorizationPolicy{bigPolicy(n)}
			}
			snap := table(b, newClock(), set).Snapshot()
			for b.Loop() {
				snap.Decide(cart, 8080, frontend, nil)
			}
		})
	}
}
