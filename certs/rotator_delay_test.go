package certs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The retry delay doubles from the delay actually used: retries squeezed
// before an expiry do not become a RetryMax wait once it has passed (a
// gateway whose leaf expired while its federator restarted waited 30 s).
func TestNextRetryDelay(t *testing.T) {
	r := &Rotator{cfg: RotatorConfig{RetryMin: time.Second, RetryMax: 30 * time.Second}}
	far := time.Now().Add(time.Hour)
	require.Equal(t, time.Second, r.nextRetryDelay(0, far))
	require.Equal(t, 2*time.Second, r.nextRetryDelay(time.Second, far))
	require.Equal(t, 30*time.Second, r.nextRetryDelay(16*time.Second, far))
	soon := time.Now().Add(200 * time.Millisecond)
	d := r.nextRetryDelay(0, soon)
	require.LessOrEqual(t, d, 100*time.Millisecond, "at most half the time left")
	expired := time.Now().Add(-time.Second)
	require.Equal(t, 2*d, r.nextRetryDelay(d, expired), "after the expiry it goes on doubling from there")
	require.Equal(t, 10*time.Millisecond, r.nextRetryDelay(0, time.Now().Add(5*time.Millisecond)), "never below 10ms")
}
