package logbackoff

import (
	"sync"
	"time"
)

// Defaults of a Limiter's intervals.
const (
	DefaultMin = 2 * time.Second
	DefaultMax = time.Minute
)

// Limiter rate-limits the log lines of one repeating failure. The zero
// value is ready to use; it is safe for concurrent use.
type Limiter struct {
	// Min is the interval after the first logged failure. If zero,
	// DefaultMin.
	Min time.Duration
	// Max caps the interval. If zero, DefaultMax.
	Max time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time

	mu         sync.Mutex // guards the fields below
	kind       string     // the kind of the failures being counted
	failures   int        // since the last success
	suppressed int        // failures not logged since the last logged one
	next       time.Time  // the earliest time the next line may be logged
	interval   time.Duration
}

// Failure records a failure of the given kind (any string that tells
// failures apart, e.g. a classification; "" is a kind too) and reports
// whether to log it, with the number of failures since the last success
// and how many of them were not logged since the previous line.
func (l *Limiter) Failure(kind string) (log bool, failures, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.failures++
	if l.failures == 1 || kind != l.kind {
		l.kind = kind
		l.interval = l.min()
		l.next = now.Add(l.interval)
		s := l.suppressed
		l.suppressed = 0
		return true, l.failures, s
	}
	if now.Before(l.next) {
		l.suppressed++
		return false, l.failures, l.suppressed
	}
	l.interval = min(2*l.interval, l.max())
	l.next = now.Add(l.interval)
	s := l.suppressed
	l.suppressed = 0
	return true, l.failures, s
}

// Success records a success and returns how many failures preceded it
// (0 if none): a caller logs the recovery when it is not 0.
func (l *Limiter) Success() (failures int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	failures = l.failures
	l.failures, l.suppressed, l.kind = 0, 0, ""
	return failures
}

func (l *Limiter) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Limiter) min() time.Duration {
	if l.Min > 0 {
		return l.Min
	}
	return DefaultMin
}

func (l *Limiter) max() time.Duration {
	if l.Max > 0 {
		return max(l.Max, l.min())
	}
	return max(DefaultMax, l.min())
}
