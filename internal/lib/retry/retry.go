// Package retry owns the exponential back-off every retry loop of Causeway
// uses: the first wait, its doubling up to a cap, and a clock that tests
// can replace.
package retry

import (
	"context"
	"time"
)

// Backoff is an exponential delay between attempts: Min first, doubled
// after every wait, at most Max. The zero value waits 100ms first and at
// most 5s.
type Backoff struct {
	// Min is the first delay (default 100ms); Max caps it (default 5s).
	Min, Max time.Duration
	// After is the clock: a channel that fires after d. If nil, time.After.
	After func(d time.Duration) <-chan time.Time

	next time.Duration
}

// Peek is the delay the next Wait waits.
func (b *Backoff) Peek() time.Duration {
	if b.next == 0 {
		b.next = b.min()
	}
	return b.next
}

// Wait waits the current delay, doubling the next one, or until ctx ends;
// it reports whether the delay passed (false: ctx ended first).
func (b *Backoff) Wait(ctx context.Context) bool {
	d := b.Peek()
	b.next = min(2*d, b.max())
	after := b.After
	if after == nil {
		after = time.After
	}
	select {
	case <-ctx.Done():
		return false
	case <-after(d):
		return ctx.Err() == nil
	}
}

// Reset makes the next delay Min again (after a success).
func (b *Backoff) Reset() { b.next = b.min() }

func (b *Backoff) min() time.Duration {
	if b.Min > 0 {
		return b.Min
	}
	return 100 * time.Millisecond
}

func (b *Backoff) max() time.Duration {
	if b.Max > 0 {
		return b.Max
	}
	return 5 * time.Second
}
