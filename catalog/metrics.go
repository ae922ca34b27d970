package catalog

import "github.com/prometheus/client_golang/prometheus"

type clientMetrics struct {
	updates    prometheus.Counter
	reconnects prometheus.Counter
	staleSince prometheus.Gauge
	rejected   prometheus.Counter
}

func newClientMetrics(reg prometheus.Registerer, component string) *clientMetrics {
	labels := prometheus.Labels{"component": component}
	m := &clientMetrics{
		updates: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "causeway", Subsystem: "catalog", Name: "updates_total",
			Help: "Catalog updates applied (snapshots and deltas).", ConstLabels: labels,
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "causeway", Subsystem: "catalog", Name: "reconnects_total",
			Help: "Catalog watch streams that ended and were re-opened.", ConstLabels: labels,
		}),
		staleSince: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "causeway", Subsystem: "catalog", Name: "stale_since_seconds",
			Help: "Unix time since which the catalog is served from the last state without a federator; 0 when live.", ConstLabels: labels,
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "causeway", Subsystem: "catalog", Name: "rejected_entries_total",
			Help: "Catalog entries received with no record this build knows or an unknown schema version; the entry's last good value stays.", ConstLabels: labels,
		}),
	}
	if reg != nil {
		reg.MustRegister(m.updates, m.reconnects, m.staleSince, m.rejected)
	}
	return m
}
