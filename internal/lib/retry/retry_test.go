package retry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffDoublesToMaxAndResets(t *testing.T) {
	var waited []time.Duration
	fire := make(chan time.Time)
	close(fire) // every wait passes at once
	b := Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond,
		After: func(d time.Duration) <-chan time.Time { waited = append(waited, d); return fire }}
	for range 5 {
		require.True(t, b.Wait(context.Background()))
	}
	require.Equal(t, []time.Duration{10, 20, 40, 50, 50}, scale(waited, time.Millisecond))
	require.Equal(t, 50*time.Millisecond, b.Peek())
	b.Reset()
	require.Equal(t, 10*time.Millisecond, b.Peek())
}

func TestBackoffDefaultsAndCancel(t *testing.T) {
	var b Backoff
	require.Equal(t, 100*time.Millisecond, b.Peek())
	b.After = func(time.Duration) <-chan time.Time { return nil } // never fires
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.False(t, b.Wait(ctx), "an ended context ends the wait")
}

func scale(ds []time.Duration, unit time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d / unit
	}
	return out
}
