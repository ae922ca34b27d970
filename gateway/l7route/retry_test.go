package l7route

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryable(t *testing.T) {
	configured := EffectiveRetry(&Retry{Codes: []int{503}})
	optedIn := EffectiveRetry(&Retry{Codes: []int{503}, NonIdempotent: true})
	none := EffectiveRetry(nil)
	status := func(code int) TryResult { return TryResult{Outcome: OutcomeResponse, Status: code} }
	connect := TryResult{Outcome: OutcomeConnectFailure}
	reset := TryResult{Outcome: OutcomeReset}
	timeout := TryResult{Outcome: OutcomeTimeout}
	tests := []struct {
		name   string
		policy RetryPolicy
		method string
		try    TryResult
		want   bool
	}{
		{"GET 503 listed", configured, "GET", status(503), true},
		{"GET 502 not listed", configured, "GET", status(502), false},
		{"GET 200", configured, "GET", status(200), false},
		{"PUT reset", configured, "PUT", reset, true},
		{"DELETE timeout", configured, "DELETE", timeout, true},
		{"POST 503 not opted in", configured, "POST", status(503), false},
		{"PATCH reset not opted in", configured, "PATCH", reset, false},
		{"POST 503 opted in", optedIn, "POST", status(503), true},
		{"POST connect failure: nothing was sent", configured, "POST", connect, true},
		{"no stanza: connect failure", none, "POST", connect, true},
		{"no stanza: GET 503", none, "GET", status(503), false},
		{"no stanza: GET reset", none, "GET", reset, false},
		{"CONNECT never", configured, "CONNECT", reset, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.policy.Retryable(tt.method, tt.try))
		})
	}
}

func TestEffectiveRetryAndAttempts(t *testing.T) {
	require.Equal(t, RetryPolicy{Attempts: 1}, EffectiveRetry(nil))
	p := EffectiveRetry(&Retry{})
	require.Equal(t, RetryPolicy{Configured: true, Attempts: DefaultAttempts, Backoff: DefaultBackoff}, p)
	p = EffectiveRetry(&Retry{Attempts: 3, Codes: []int{503}})
	fail := TryResult{Outcome: OutcomeResponse, Status: 503}
	for retries := range 3 {
		require.True(t, p.ShouldRetry("GET", retries, fail), "retry %d", retries+1)
	}
	require.False(t, p.ShouldRetry("GET", 3, fail), "attempts are retries after the first try")
}

func TestDelay(t *testing.T) {
	p := RetryPolicy{Backoff: 100 * time.Millisecond}
	tests := []struct {
		n    int
		want time.Duration
	}{{0, 0}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {50, time.Second}}
	for _, tt := range tests {
		require.Equal(t, tt.want, p.Delay(tt.n, nil), "retry %d", tt.n)
	}
	// Jitter adds up to half again, never less than the backoff.
	require.Equal(t, 149*time.Millisecond, p.Delay(1, &seqRand{seq: []int64{int64(49 * time.Millisecond)}}))
	require.Equal(t, 100*time.Millisecond, p.Delay(1, &seqRand{seq: []int64{0}}))
	require.Zero(t, RetryPolicy{}.Delay(1, nil))
}

func TestBudget(t *testing.T) {
	t.Run("floor then ratio", func(t *testing.T) {
		clk := newFakeClock(t)
		b, err := NewBudget(BudgetConfig{MinPerSecond: 1, Window: 10 * time.Second, Now: clk.Now})
		require.NoError(t, err)
		for range 100 {
			b.Request()
		}
		// 0.2 * 100 + 1/s * 10s = 30 retries in the window.
		for i := range 30 {
			require.True(t, b.Retry(), "retry %d", i+1)
		}
		require.False(t, b.Retry(), "budget exhausted")
		b.Request()
		b.Request()
		b.Request()
		b.Request()
		b.Request()
		require.True(t, b.Retry(), "5 more requests earn one retry")
		require.False(t, b.Retry())
	})
	t.Run("window slides", func(t *testing.T) {
		clk := newFakeClock(t)
		b, err := NewBudget(BudgetConfig{Ratio: -1, MinPerSecond: 0.5, Window: 10 * time.Second, Now: clk.Now})
		require.NoError(t, err)
		for range 5 {
			require.True(t, b.Retry())
		}
		require.False(t, b.Retry(), "floor of 0.5/s over 10s is 5")
		clk.Advance(5 * time.Second)
		require.False(t, b.Retry(), "the retries are still in the window")
		clk.Advance(6 * time.Second)
		require.True(t, b.Retry(), "the old retries left the window")
	})
	t.Run("defaults", func(t *testing.T) {
		clk := newFakeClock(t)
		b, err := NewBudget(BudgetConfig{Now: clk.Now})
		require.NoError(t, err)
		n := 0
		for b.Retry() {
			n++
		}
		require.Equal(t, 100, n, "10/s over a 10s window with no requests")
	})
	t.Run("no floor", func(t *testing.T) {
		b, err := NewBudget(BudgetConfig{MinPerSecond: -1})
		require.NoError(t, err)
		require.False(t, b.Retry())
		for range 10 {
			b.Request()
		}
		require.True(t, b.Retry())
		require.True(t, b.Retry())
		require.False(t, b.Retry())
	})
	t.Run("invalid", func(t *testing.T) {
		_, err := NewBudget(BudgetConfig{Window: time.Millisecond})
		require.Error(t, err)
	})
}
