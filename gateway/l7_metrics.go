package gateway

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// l7Metrics are the series of requests on L7 ports. Labels are bounded:
// services and clusters come from the catalog (or "other"), the route is
// a configured route's name (or "-"), the code a class (2xx … 5xx).
type l7Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	budget   *prometheus.CounterVec
	routes   *prometheus.GaugeVec
}

func newL7Metrics(reg prometheus.Registerer) l7Metrics {
	const ns, sub = "causeway", "gateway"
	m := l7Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "requests_total", Help: "Requests of L7 ports by service, route (\"-\" without one), destination cluster (\"other\" when none was reached) and status class (2xx, 3xx, 4xx, 5xx)."},
			[]string{"service", "route", "destination_cluster", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "request_duration_seconds", Help: "Time from a request's arrival to its response head (retries included), by service.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"service"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "request_retries_total", Help: "Requests of L7 ports sent again to another instance or cluster, by service."},
			[]string{"service"}),
		budget: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "retry_budget_exhausted_total", Help: "Retries of L7 requests not made because the retry budget was used up, by service."},
			[]string{"service"}),
		routes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "routes", Help: "Configured L7 routes by state: valid (serving) or invalid (refused; a last good version keeps serving)."},
			[]string{"state"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.retries, m.budget, m.routes)
	}
	return m
}

// observe counts a request answered with code after d.
func (m l7Metrics) observe(service, route, cluster string, code int, d time.Duration) {
	m.requests.WithLabelValues(service, route, cluster, codeClass(code)).Inc()
	m.duration.WithLabelValues(service).Observe(d.Seconds())
}

// codeClass is "2xx" for 200-299 and so on.
func codeClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}
