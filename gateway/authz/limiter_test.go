package authz

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLimitPerPrincipalFair(t *testing.T) {
	c := newClock()
	tbl := table(t, c, Set{RateLimits: []*RateLimitPolicy{rateLimit("r", "cart", KeyPrincipal, 10, 5)}})
	snap := tbl.Snapshot()
	// The noisy caller spends its burst and is refused from then on.
	allowed := 0
	for range 1000 {
		if snap.Limit(cart, 8080, batch).Allowed {
			allowed++
		}
	}
	require.Equal(t, 5, allowed)
	l := snap.Limit(cart, 8080, batch)
	require.False(t, l.Allowed)
	require.Equal(t, "shop/r", l.Policy)
	require.Equal(t, 100*time.Millisecond, l.RetryAfter)
	require.Equal(t, 1, RetryAfterSeconds(l.RetryAfter))
	// The quiet caller of the same service is unaffected, and so is the
	// noisy one on another service.
	for range 5 {
		require.True(t, snap.Limit(cart, 8080, frontend).Allowed)
	}
	require.True(t, snap.Limit(stock, 8080, batch).Allowed)
	// Tokens come back at the rate.
	c.Add(300 * time.Millisecond)
	for range 3 {
		require.True(t, snap.Limit(cart, 8080, batch).Allowed)
	}
	require.False(t, snap.Limit(cart, 8080, batch).Allowed)
}

func TestLimitPerCluster(t *testing.T) {
	tbl := table(t, newClock(), Set{RateLimits: []*RateLimitPolicy{rateLimit("r", "cart", KeyCluster, 1, 2)}})
	snap := tbl.Snapshot()
	require.True(t, snap.Limit(cart, 8080, frontend).Allowed)
	require.True(t, snap.Limit(cart, 8080, batch).Allowed)
	require.False(t, snap.Limit(cart, 8080, northAny).Allowed, "north's workloads share north's bucket")
	require.True(t, snap.Limit(cart, 8080, westWeb).Allowed)
}

func TestLimitPortsAndSeveralPolicies(t *testing.T) {
	c := newClock()
	slow := rateLimit("slow", "cart", KeyPrincipal, 1, 1, 9090)
	slow.Spec.Period = metav1.Duration{Duration: time.Minute}
	wide := rateLimit("wide", "cart", KeyCluster, 2, 2)
	snap := table(t, c, Set{RateLimits: []*RateLimitPolicy{slow, wide}}).Snapshot()

	require.True(t, snap.Limit(cart, 9090, frontend).Allowed)
	l := snap.Limit(cart, 9090, frontend)
	require.False(t, l.Allowed)
	require.Equal(t, "shop/slow", l.Policy)
	require.Equal(t, time.Minute, l.RetryAfter)
	require.Equal(t, 60, RetryAfterSeconds(l.RetryAfter))
	// The refusal took no token of the cluster-wide limit.
	require.True(t, snap.Limit(cart, 8080, batch).Allowed)
	l = snap.Limit(cart, 8080, batch)
	require.False(t, l.Allowed)
	require.Equal(t, "shop/wide", l.Policy)
	require.True(t, snap.Limit(stock, 8080, batch).Allowed, "no policy on stock")
}

func TestLimitKeepsBucketsAcrossUpdates(t *testing.T) {
	c := newClock()
	tbl := NewTable(LimiterConfig{Now: c.Now})
	r := rateLimit("r", "cart", KeyPrincipal, 1, 1)
	update := func(set Set) {
		t.Helper()
		st, err := tbl.Update(set, exported)
		require.NoError(t, err)
		require.NoError(t, Errors(st))
	}
	update(Set{RateLimits: []*RateLimitPolicy{r}})
	require.True(t, tbl.Snapshot().Limit(cart, 8080, frontend).Allowed)
	// An unrelated change keeps the bucket (a caller cannot reset its
	// limit by waiting for a policy edit).
	update(Set{RateLimits: []*RateLimitPolicy{r}, Policies: []*AuthorizationPolicy{policy("p", "stock", ActionAllow, from(src("*", "", "")))}})
	require.False(t, tbl.Snapshot().Limit(cart, 8080, frontend).Allowed)
	// A changed bucket starts afresh.
	update(Set{RateLimits: []*RateLimitPolicy{rateLimit("r", "cart", KeyPrincipal, 2, 2)}})
	require.True(t, tbl.Snapshot().Limit(cart, 8080, frontend).Allowed)
	// An invalid version keeps the last good limiter and its state.
	for tbl.Snapshot().Limit(cart, 8080, frontend).Allowed {
	}
	st, err := tbl.Update(Set{RateLimits: []*RateLimitPolicy{rateLimit("r", "cart", KeyPrincipal, 0, 2)}}, exported)
	require.NoError(t, err)
	require.True(t, st[0].Stale)
	require.False(t, tbl.Snapshot().Limit(cart, 8080, frontend).Allowed)
	// Removed, it limits nothing.
	update(Set{})
	require.True(t, tbl.Snapshot().Limit(cart, 8080, frontend).Allowed)
}

func TestLimitBoundedMemory(t *testing.T) {
	c := newClock()
	tbl := NewTable(LimiterConfig{Now: c.Now, MaxKeys: 64})
	st, err := tbl.Update(Set{RateLimits: []*RateLimitPolicy{rateLimit("r", "cart", KeyPrincipal, 1, 1)}}, exported)
	require.NoError(t, err)
	require.NoError(t, Errors(st))
	snap := tbl.Snapshot()
	require.True(t, snap.Limit(cart, 8080, frontend).Allowed)
	// A compromised cluster claims many identities.
	for i := range 10000 {
		snap.Limit(cart, 8080, who("west", "ns", fmt.Sprint("sa-", i)))
	}
	require.LessOrEqual(t, snap.limiters(cart, 8080)[0].buckets.Len(), 64)
	require.False(t, snap.Limit(cart, 8080, frontend).Allowed, "a tracked caller keeps its state")
	c.Add(2 * time.Second)
	require.True(t, snap.Limit(cart, 8080, frontend).Allowed)
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {90 * time.Second, 90}} {
		require.Equal(t, tc.want, RetryAfterSeconds(tc.d), "%s", tc.d)
	}
}

func BenchmarkLimit(b *testing.B) {
	snap := table(b, newClock(), Set{RateLimits: []*RateLimitPolicy{rateLimit("r", "cart", KeyPrincipal, 1<<30, 1<<30)}}).Snapshot()
	for b.Loop() {
		snap.Limit(cart, 8080, frontend)
	}
}
