package l7route

import (
	"slices"
	"time"
)

const (
	// DefaultAttempts is how many retries a retry stanza without attempts
	// allows.
	DefaultAttempts = 2
	// MaxAttempts is the most retries a route may ask for.
	MaxAttempts = 10
	// DefaultBackoff is the least wait before a retry when a retry stanza
	// sets no backoff.
	DefaultBackoff = 25 * time.Millisecond
	// backoffCap is how many times the least wait a backoff grows to.
	backoffCap = 10
)

// Outcome is how one try of a request to a backend ended.
type Outcome int

const (
	// OutcomeResponse is a response from the backend (see TryResult.Status).
	OutcomeResponse Outcome = iota
	// OutcomeConnectFailure is a try that never reached the backend: no
	// connection or stream, refused by the peer gateway, no ready
	// endpoint. Nothing of the request was sent.
	OutcomeConnectFailure
	// OutcomeReset is a connection or stream reset after the request (or
	// part of it) was sent and before a response.
	OutcomeReset
	// OutcomeTimeout is a try that ran past the backendRequest timeout.
	OutcomeTimeout
)

// TryResult is the outcome of one try.
type TryResult struct {
	Outcome Outcome
	// Status is the response status, for OutcomeResponse.
	Status int
}

// RetryPolicy is the retry policy in effect for one request.
type RetryPolicy struct {
	// Configured is true when the rule has a retry stanza. Without one,
	// only connect failures are retried (once): the request never left,
	// as the L4 path fails over today.
	Configured bool
	// Attempts is the most retries after the first try.
	Attempts int
	// Codes are the response statuses retried.
	Codes []int
	// Backoff is the least wait before a retry.
	Backoff time.Duration
	// NonIdempotent allows retrying methods that are not idempotent
	// after they may have reached the backend.
	NonIdempotent bool
}

// EffectiveRetry is the policy of a rule whose retry stanza is r (nil: no
// stanza).
func EffectiveRetry(r *Retry) RetryPolicy {
	if r == nil {
		return RetryPolicy{Attempts: 1}
	}
	p := RetryPolicy{Configured: true, Attempts: r.Attempts, Codes: r.Codes, Backoff: r.Backoff, NonIdempotent: r.NonIdempotent}
	if p.Attempts == 0 {
		p.Attempts = DefaultAttempts
	}
	if p.Backoff == 0 {
		p.Backoff = DefaultBackoff
	}
	return p
}

// Idempotent reports whether requests with method may be retried after
// they reached the backend without the route opting in: GET, HEAD, OPTIONS,
// PUT, DELETE and TRACE (RFC 9110 9.2.2).
func Idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return false
}

// Retryable reports whether a request with method whose try ended with t
// may be retried under p, not counting attempts or budget. A connect
// failure is always retryable: nothing was sent. A reset, a timeout or a
// listed status is retryable if the rule has a retry stanza and the method
// is idempotent or the route opted in to retrying it.
func (p RetryPolicy) Retryable(method string, t TryResult) bool {
	if t.Outcome == OutcomeConnectFailure {
		return true
	}
	if !p.Configured || (!p.NonIdempotent && !Idempotent(method)) {
		return false
	}
	switch t.Outcome {
	case OutcomeReset, OutcomeTimeout:
		return true
	case OutcomeResponse:
		return slices.Contains(p.Codes, t.Status)
	}
	return false
}

// ShouldRetry reports whether to retry a request with method after retries
// retries so far, the last ending with t. The caller also asks the retry
// budget, after this says yes.
func (p RetryPolicy) ShouldRetry(method string, retries int, t TryResult) bool {
	return retries < p.Attempts && p.Retryable(method, t)
}

// Delay is the wait before retry number n (1 for the first retry): the
// policy's backoff doubled for every retry before, capped at ten times the
// backoff, plus up to half again of jitter from rnd (none if rnd is nil).
// It is never less than the backoff, as Gateway API requires. A connect
// failure is retried at once (Delay is not asked).
func (p RetryPolicy) Delay(n int, rnd Rand) time.Duration {
	if p.Backoff <= 0 || n < 1 {
		return 0
	}
	d := p.Backoff
	for i := 1; i < n && d < p.Backoff*backoffCap; i++ {
		d *= 2
	}
	d = min(d, p.Backoff*backoffCap)
	if rnd != nil && d >= 2 {
		d += time.Duration(rnd.Int64N(int64(d / 2)))
	}
	return d
}
