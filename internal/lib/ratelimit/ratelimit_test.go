package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBucketPerKey(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	tb, err := New[string](Config{Rate: 2, Burst: 3, Now: c.now})
	require.NoError(t, err)
	for range 3 {
		require.True(t, tb.Allow("a"))
	}
	require.False(t, tb.Allow("a"), "burst spent")
	require.True(t, tb.Allow("b"), "another key has its own bucket")
	wait, ok := tb.Check("a")
	require.False(t, ok)
	require.Equal(t, 500*time.Millisecond, wait)
	c.add(500 * time.Millisecond)
	_, ok = tb.Check("a")
	require.True(t, ok)
	tb.Take("a")
	tb.Take("a") // floors at zero
	_, ok = tb.Check("a")
	require.False(t, ok)
	_, ok = tb.Check("never")
	require.True(t, ok)
	require.Equal(t, 2, tb.Len(), "Check does not add keys")
}

func TestTableBounded(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	tb, err := New[string](Config{Rate: 1, Burst: 1, MaxKeys: 64, Now: c.now})
	require.NoError(t, err)
	require.True(t, tb.Allow("flooder"))
	for i := range 10000 {
		tb.Allow(fmt.Sprint("spread-", i))
	}
	require.LessOrEqual(t, tb.Len(), 64)
	require.False(t, tb.Allow("flooder"), "a flooding key keeps its state however many keys come")
	// Once buckets refill, they make room.
	c.add(2 * time.Second)
	require.True(t, tb.Allow("new"))
	require.LessOrEqual(t, tb.Len(), 64)
}

func TestConfigErrors(t *testing.T) {
	_, err := New[string](Config{})
	require.ErrorContains(t, err, "rate")
	_, err = New[string](Config{Rate: 1, Burst: -1})
	require.ErrorContains(t, err, "burst")
}
