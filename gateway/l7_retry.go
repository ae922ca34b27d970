package gateway

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/gateway/l7route"
)

// tryCandidates sends q to dest's candidate clusters (only the target
// cluster when the route pins one) until one answers as the retry policy
// accepts. A try that sent nothing moves on to the next candidate, up to
// MaxAttempts, as an L4 flow does; a try that may have reached a backend
// (a reset, a per-try timeout, a retried status) is repeated only as the
// policy and the service's retry budget allow, on the next candidate
// (another cluster when one exists). It returns the response to forward,
// or nil with the cluster last tried and the status to answer.
func (g *Gateway) tryCandidates(ctx context.Context, v *catalog.View, dest egressTarget, sel *l7route.Selection,
	q *l7Request, service string) (*http.Response, string, int) {
	clusters := usableClusters(g.l7Selector().Candidates(v, g.cfg.Cluster, dest.key, dest.port), sel.Target.Cluster)
	if len(clusters) == 0 {
		return nil, labelOther, http.StatusServiceUnavailable
	}
	policy := sel.Retry()
	budget := g.budget(dest.key)
	budget.Request()
	unsent, retries := 0, 0
	for i := 0; ; i++ {
		cluster := clusters[i%len(clusters)]
		tryCtx, cancelTry := withTimeout(ctx, sel.Timeouts().BackendRequest)
		resp, res, err := g.try(tryCtx, dest, cluster, q)
		if err == nil && !retryStatus(policy, q, res) {
			resp.Body = &endingBody{ReadCloser: resp.Body, end: cancelTry}
			return resp, cluster, resp.StatusCode
		}
		if resp != nil {
			resp.Body.Close()
		}
		cancelTry()
		if ctx.Err() != nil {
			return nil, cluster, http.StatusGatewayTimeout
		}
		switch {
		case res.Outcome == l7route.OutcomeConnectFailure && unsent+1 < g.cfg.MaxAttempts:
			unsent++ // nothing was sent: as an L4 flow moves on
		case q.replayable && policy.ShouldRetry(q.out.Method, retries, res) && budget.Retry():
			retries++
		default:
			if policy.Configured && policy.Retryable(q.out.Method, res) {
				g.metrics.l7.budget.WithLabelValues(service).Inc()
			}
			return nil, cluster, failureStatus(res)
		}
		g.metrics.l7.retries.WithLabelValues(service).Inc()
		if res.Outcome != l7route.OutcomeConnectFailure && !sleepCtx(ctx, policy.Delay(retries, globalRand{})) {
			return nil, cluster, http.StatusGatewayTimeout
		}
	}
}

// try sends q to cluster once and classifies the outcome; err is set when
// no response came back.
func (g *Gateway) try(ctx context.Context, dest egressTarget, cluster string, q *l7Request) (*http.Response, l7route.TryResult, error) {
	resp, err := g.roundTrip(ctx, dest, cluster, q.attempt(ctx))
	if err == nil && resp.Header.Get(unsentHeader) != "" {
		resp.Header.Del(unsentHeader)
		if q.replayable { // the ingress side reached no backend: try elsewhere
			resp.Body.Close()
			resp, err = nil, notSent(&refusal{causewayv1.StreamCode_STREAM_CODE_DIAL_FAILED, "no backend of " + cluster + " answered"})
		}
	}
	switch {
	case err == nil:
		g.responseHealth(cluster, dest, resp.StatusCode)
		return resp, l7route.TryResult{Outcome: l7route.OutcomeResponse, Status: resp.StatusCode}, nil
	case errors.Is(err, errNotSent):
		g.attemptFailed(cluster, dest, err)
		return nil, l7route.TryResult{Outcome: l7route.OutcomeConnectFailure}, err
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, l7route.TryResult{Outcome: l7route.OutcomeTimeout}, err
	}
	g.attemptFailed(cluster, dest, err)
	return nil, l7route.TryResult{Outcome: l7route.OutcomeReset}, err
}

// retryStatus reports whether a response is one the policy retries.
func retryStatus(p l7route.RetryPolicy, q *l7Request, res l7route.TryResult) bool {
	return q.replayable && p.Configured && p.Retryable(q.out.Method, res)
}

// responseHealth feeds request-level outlier detection: a 5xx counts as a
// failure of the cluster (consecutive ones eject it), anything else as a
// success.
func (g *Gateway) responseHealth(cluster string, dest egressTarget, code int) {
	if code < 500 {
		g.outliers.success(cluster)
		return
	}
	if g.outliers.failure(cluster) {
		g.log.Info("cluster ejected from request balancing", "peer", cluster, "service", dest.key.String(),
			"until", g.outliers.ejectedUntil(cluster), "status", code)
	}
}

// failureStatus is the status answered when no try got a response.
func failureStatus(res l7route.TryResult) int {
	switch res.Outcome {
	case l7route.OutcomeResponse:
		return res.Status
	case l7route.OutcomeTimeout:
		return http.StatusGatewayTimeout
	case l7route.OutcomeConnectFailure:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

// usableClusters are the candidates a request may try, in order: the
// usable ones and the last resorts, only pinned when set.
func usableClusters(cands []Candidate, pinned string) []string {
	var out []string
	for _, c := range cands {
		if (c.Skip != "" && !c.LastResort()) || (pinned != "" && c.Cluster != pinned) {
			continue
		}
		out = append(out, c.Cluster)
	}
	return out
}

// l7Selector orders the candidates of a request by the requests in flight
// to each cluster (long-lived, mostly idle L4 flows are another unit of
// load and would pin every request to the cluster without one).
func (g *Gateway) l7Selector() Selector {
	return Selector{Load: g.l7Requests, EjectedUntil: g.outliers.ejectedUntil}
}

// l7Requests is the L7 requests in flight to cluster.
func (g *Gateway) l7Requests(cluster string) int {
	if l, ok := g.l7Loads.Load(cluster); ok {
		return int(l.(*l7Load).active.Load())
	}
	return 0
}

// budget is dest's retry budget, shared by the gateway's requests to it.
func (g *Gateway) budget(key catalog.ServiceKey) *l7route.Budget {
	if b, ok := g.budgets.Load(key); ok {
		return b.(*l7route.Budget)
	}
	b, _ := l7route.NewBudget(l7route.BudgetConfig{}) // the defaults are valid
	actual, _ := g.budgets.LoadOrStore(key, b)
	return actual.(*l7route.Budget)
}

// withTimeout bounds ctx by d: zero (not set, the gateway's default: none)
// and l7route.Unlimited leave it unbounded.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 || d == l7route.Unlimited {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// globalRand is math/rand/v2's global source, safe for concurrent use.
type globalRand struct{}

func (globalRand) Int64N(n int64) int64 { return rand.Int64N(n) }
