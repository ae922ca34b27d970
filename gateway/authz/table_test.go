package authz

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTableKeepsLastGood(t *testing.T) {
	tbl := NewTable(LimiterConfig{})
	v1 := policy("only-web", "cart", ActionAllow, from(src("north", "web", "*")))
	other := policy("other", "stock", ActionDeny, from(src("west", "", "")))
	st, err := tbl.Update(Set{Policies: []*AuthorizationPolicy{v1, other}}, exported)
	require.NoError(t, err)
	require.NoError(t, Errors(st))
	require.True(t, tbl.Snapshot().Decide(cart, 8080, frontend, nil).Allowed)

	// v2 is invalid: v1 stays enforced, v2 is reported stale.
	v2 := policy("only-web", "cart", ActionAllow, from(src("north", "Web", "*")))
	st, err = tbl.Update(Set{Policies: []*AuthorizationPolicy{v2, other}}, exported)
	require.NoError(t, err)
	require.Error(t, st[0].Err)
	require.True(t, st[0].Stale)
	require.False(t, st[0].Enforced())
	require.NoError(t, st[1].Err)
	d := tbl.Snapshot().Decide(cart, 8080, batch, nil)
	require.False(t, d.Allowed)
	require.Equal(t, ReasonNoAllowMatch, d.Reason, "v1 (web only) is enforced")
	cs := st[0].Conditions()
	require.Equal(t, metav1.ConditionFalse, cs[0].Status)
	require.Contains(t, cs[0].Message, "spec.rules[0].from[0].namespace")
	require.Contains(t, cs[0].Message, "last accepted version of the policy is enforced")

	// A new policy that was never valid enforces nothing.
	bad := policy("new", "stock", ActionAllow)
	st, err = tbl.Update(Set{Policies: []*AuthorizationPolicy{v2, other, bad}}, exported)
	require.NoError(t, err)
	require.False(t, st[2].Stale)
	require.Contains(t, st[2].Conditions()[0].Message, "the policy is not enforced")
	require.True(t, tbl.Snapshot().Decide(stock, 8080, frontend, nil).Allowed)

	// A fixed v3 replaces v1.
	v3 := policy("only-web", "cart", ActionAllow, from(src("north", "batch", "*")))
	st, err = tbl.Update(Set{Policies: []*AuthorizationPolicy{v3, other}}, exported)
	require.NoError(t, err)
	require.NoError(t, Errors(st))
	require.True(t, tbl.Snapshot().Decide(cart, 8080, batch, nil).Allowed)
	require.False(t, tbl.Snapshot().Decide(cart, 8080, frontend, nil).Allowed)

	// A policy left out is removed; so is its last good version.
	_, err = tbl.Update(Set{Policies: []*AuthorizationPolicy{other}}, exported)
	require.NoError(t, err)
	require.Equal(t, ReasonDefaultAllow, tbl.Snapshot().Decide(cart, 8080, frontend, nil).Reason)
	st, err = tbl.Update(Set{Policies: []*AuthorizationPolicy{v2}}, exported)
	require.NoError(t, err)
	require.False(t, st[0].Stale, "removal forgot v3")
}

func TestTableUnresolvedPolicyIsEnforced(t *testing.T) {
	tbl := NewTable(LimiterConfig{})
	future := ServiceKey{Namespace: "shop", Name: "future"}
	p := policy("future", "future", ActionAllow, from(src("north", "web", "frontend")))
	st, err := tbl.Update(Set{Policies: []*AuthorizationPolicy{p}}, exported)
	require.NoError(t, err)
	require.Error(t, st[0].Err)
	require.True(t, st[0].Enforced())
	require.Equal(t, string(ReasonServiceNotFound), st[0].Conditions()[1].Reason)
	require.False(t, tbl.Snapshot().Decide(future, 8080, batch, nil).Allowed, "protected from the first flow")
	require.True(t, tbl.Snapshot().Decide(future, 8080, frontend, nil).Allowed)
}

func TestTableDuplicatesAndDefault(t *testing.T) {
	tbl := NewTable(LimiterConfig{})
	a := policy("dup", "cart", ActionAllow, from(src("north", "", "")))
	b := policy("dup", "cart", ActionAllow, from(src("west", "", "")))
	st, err := tbl.Update(Set{DefaultAction: ActionDeny, Policies: []*AuthorizationPolicy{a, b}}, nil)
	require.NoError(t, err)
	require.NoError(t, st[0].Err)
	require.ErrorContains(t, st[1].Err, "listed twice")
	require.Equal(t, string(ReasonDuplicate), st[1].Conditions()[0].Reason)
	require.ErrorContains(t, Errors(st), "AuthorizationPolicy shop/dup")
	require.True(t, tbl.Snapshot().Decide(cart, 1, frontend, nil).Allowed)
	require.Equal(t, ActionDeny, tbl.Snapshot().DefaultAction())

	before := tbl.Snapshot()
	_, err = tbl.Update(Set{DefaultAction: "deny"}, nil)
	require.ErrorContains(t, err, `defaultAction: unsupported value "deny"`)
	require.Same(t, before, tbl.Snapshot(), "a bad default changes nothing")
}

func TestTableConcurrentReaders(t *testing.T) {
	tbl := NewTable(LimiterConfig{})
	sets := []Set{
		{Policies: []*AuthorizationPolicy{policy("p", "cart", ActionAllow, from(src("north", "", "")))}},
		{DefaultAction: ActionDeny, RateLimits: []*RateLimitPolicy{rateLimit("r", "cart", "", 5, 0)}},
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				snap := tbl.Snapshot()
				snap.Decide(cart, 8080, frontend, get("/"))
				snap.Limit(cart, 8080, frontend)
			}
		})
	}
	for i := range 200 {
		_, err := tbl.Update(sets[i%2], exported)
		require.NoError(t, err)
	}
	close(done)
	wg.Wait()
}
