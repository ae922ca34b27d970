package authzfile

import (
	"fmt"

	"github.com/causeway-mesh/causeway/gateway/authz"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the authorization file's series.
type metrics struct {
	reloads  *prometheus.CounterVec
	entries  *prometheus.GaugeVec
	rejected prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "causeway", "authzfile"
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "reloads_total", Help: "Versions of the authorization file read, by result: loaded (now enforced) or rejected (unreadable or invalid; counted once per distinct version)."},
			[]string{"result"}),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "entries", Help: "Entries of the version of the authorization file being enforced (the last good one), by kind: identities, policies, rateLimits."},
			[]string{"kind"}),
		rejected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "rejected", Help: "1 while the authorization file's current version is rejected and the last good version is enforced, else 0."}),
	}
	m.reloads.WithLabelValues(resultLoaded)
	m.reloads.WithLabelValues(resultRejected)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.reloads, m.entries, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register authorization file metrics: %w", err)
		}
	}
	return m, nil
}

// loaded records a version now enforced.
func (m *metrics) loaded(st *authz.Static) {
	m.reloads.WithLabelValues(resultLoaded).Inc()
	m.entries.WithLabelValues("identities").Set(float64(st.Resolver.Len()))
	m.entries.WithLabelValues("policies").Set(float64(len(st.Set.Policies)))
	m.entries.WithLabelValues("rateLimits").Set(float64(len(st.Set.RateLimits)))
}

const (
	resultLoaded   = "loaded"
	resultRejected = "rejected"
)
