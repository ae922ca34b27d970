package logbackoff

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{Min: 2 * time.Second, Max: 10 * time.Second, Now: func() time.Time { return now }}
	// One failure per second for a minute: logged at 0, 2, 6, 14, 24, 34, ... (2, 4, 8, then capped at 10).
	var logged []int
	for sec := 0; sec < 60; sec++ {
		if ok, failures, _ := l.Failure("refused"); ok {
			logged = append(logged, sec)
			require.Equal(t, sec+1, failures)
		}
		now = now.Add(time.Second)
	}
	require.Equal(t, []int{0, 2, 6, 14, 24, 34, 44, 54}, logged)

	// A new kind is logged at once, and resets the interval.
	ok, _, suppressed := l.Failure("unauthenticated")
	require.True(t, ok)
	require.Equal(t, 5, suppressed, "failures at 55..59 were not logged")
	ok, _, _ = l.Failure("unauthenticated")
	require.False(t, ok)

	require.Equal(t, 62, l.Success())
	require.Equal(t, 0, l.Success())
	ok, failures, suppressed := l.Failure("unauthenticated")
	require.True(t, ok, "the first failure after a success is logged")
	require.Equal(t, 1, failures)
	require.Equal(t, 0, suppressed)
}

func TestLimiterZeroValue(t *testing.T) {
	var l Limiter
	ok, _, _ := l.Failure("")
	require.True(t, ok)
	ok, _, _ = l.Failure("")
	require.False(t, ok, "a second failure within DefaultMin is not logged")
}
