package authz

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const staticExample = `
version: 1
defaultAction: Deny
identities:
- cidr: 10.1.0.0/16
  namespace: web
  serviceAccount: frontend
- cidr: 10.1.9.0/24
  namespace: batch
  serviceAccount: jobs
policies:
- metadata: {namespace: shop, name: cart-callers}
  spec:
    service: cart
    rules:
    - from:
      - {cluster: north, namespace: web, serviceAccount: frontend}
- apiVersion: causeway.dev/v1alpha1
  kind: AuthorizationPolicy
  metadata: {namespace: shop, name: no-admin}
  spec:
    service: cart
    ports: [9090]
    action: Deny
    rules:
    - from: [{cluster: "*"}]
      to: [{paths: ["/admin*"]}]
rateLimits:
- metadata: {namespace: shop, name: cart-per-caller}
  spec:
    service: cart
    key: Principal
    requests: 100
    period: 1s
    burst: 200
`

func TestParseStatic(t *testing.T) {
	st, err := ParseStatic([]byte(staticExample), "east", domain)
	require.NoError(t, err)
	require.Equal(t, ActionDeny, st.Set.DefaultAction)
	require.Len(t, st.Set.Policies, 2)
	require.Equal(t, KindAuthorizationPolicy, st.Set.Policies[0].Kind)
	require.Equal(t, "shop/no-admin", st.Set.Policies[1].Key().String())
	require.Len(t, st.Set.RateLimits, 1)
	require.Equal(t, time.Second, st.Set.RateLimits[0].Spec.Period.Duration)
	require.Equal(t, who("east", "batch", "jobs"), st.Resolver.Resolve(netip.MustParseAddr("10.1.9.7")))

	tbl := NewTable(LimiterConfig{})
	statuses, err := tbl.Update(st.Set, nil)
	require.NoError(t, err)
	require.NoError(t, Errors(statuses))
	require.True(t, tbl.Snapshot().Decide(cart, 8080, frontend, nil).Allowed)
	require.False(t, tbl.Snapshot().Decide(stock, 8080, frontend, nil).Allowed)

	empty, err := ParseStatic([]byte("version: 1\n"), "east", domain)
	require.NoError(t, err)
	require.Empty(t, empty.Set.Policies)
}

func TestParseStaticErrors(t *testing.T) {
	pol := func(spec string) string {
		return "version: 1\npolicies:\n- metadata: {namespace: shop, name: p}\n  spec:\n" + spec
	}
	for _, tc := range []struct{ name, file, want string }{
		{"no version", "policies: []\n", "version: required"},
		{"future version", "version: 2\n", "version: 2 is not supported"},
		{"not yaml", "version: [\n", "did not find expected node content"},
		{"unknown field", "version: 1\npolicie: []\n", `unknown field "policie" (did you mean policies?)`},
		{"unknown spec field", pol("    servce: cart\n"), `line 5: policies[0] (shop/p).spec: unknown field "servce" (did you mean service?)`},
		{"bad default", "version: 1\ndefaultAction: deny\n", `defaultAction: unsupported value "deny"`},
		{"bad rule", pol("    service: cart\n    rules:\n    - from: [{namespace: Web}]\n"),
			`policies[0] (shop/p): invalid AuthorizationPolicy shop/p: spec.rules[0].from[0].namespace: "Web" is not a namespace name`},
		{"no rules", pol("    service: cart\n"), "policies[0] (shop/p): invalid AuthorizationPolicy shop/p: spec.rules: at least one rule"},
		{"wrong kind", "version: 1\npolicies:\n- kind: RateLimitPolicy\n  metadata: {namespace: shop, name: p}\n  spec: {service: cart, rules: [{from: [{cluster: a}]}]}\n",
			`policies[0] (shop/p): kind: "RateLimitPolicy" in a list of AuthorizationPolicys`},
		{"wrong api", "version: 1\nrateLimits:\n- apiVersion: v1\n  metadata: {namespace: shop, name: r}\n  spec: {service: cart, requests: 1}\n",
			`rateLimits[0] (shop/r): apiVersion: "v1" is not supported`},
		{"duplicate", "version: 1\nrateLimits:\n- metadata: {namespace: shop, name: r}\n  spec: {service: cart, requests: 1}\n- metadata: {namespace: shop, name: r}\n  spec: {service: cart, requests: 2}\n",
			"rateLimits[1] (shop/r): invalid RateLimitPolicy shop/r: metadata.name: shop/r is listed twice"},
		{"bad rate", "version: 1\nrateLimits:\n- metadata: {namespace: shop, name: r}\n  spec: {service: cart, requests: 0}\n",
			"rateLimits[0] (shop/r): invalid RateLimitPolicy shop/r: spec.requests: 0: at least 1"},
		{"bare period", "version: 1\nrateLimits:\n- metadata: {namespace: shop, name: r}\n  spec: {service: cart, requests: 1, period: 5}\n",
			"want a duration with a unit"},
		{"bad identity", "version: 1\nidentities:\n- {cidr: 10.0.0.1/8, namespace: web, serviceAccount: x}\n", "identities[0].cidr: \"10.0.0.1/8\" has bits set after the prefix length: did you mean 10.0.0.0/8?"},
		{"overlapping identities", "version: 1\nidentities:\n- {cidr: 10.0.0.0/8, namespace: web, serviceAccount: x}\n- {cidr: 10.0.0.0/8, namespace: web, serviceAccount: y}\n",
			"identities[1].cidr: 10.0.0.0/8 is also identities[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStatic([]byte(tc.file), "east", domain)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// FuzzParseStatic: hostile files are refused or parsed, never panic, and
// whatever parses loads into a Table without errors.
func FuzzParseStatic(f *testing.F) {
	f.Add(staticExample)
	f.Add("version: 1\nidentities: [{cidr: '::/0', namespace: a, serviceAccount: b}]\n")
	f.Fuzz(func(t *testing.T, file string) {
		st, err := ParseStatic([]byte(file), "east", domain)
		if err != nil {
			return
		}
		statuses, err := NewTable(LimiterConfig{}).Update(st.Set, nil)
		require.NoError(t, err)
		require.NoError(t, Errors(statuses))
	})
}
