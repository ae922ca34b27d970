package routefile

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the routes file's series.
type metrics struct {
	reloads  *prometheus.CounterVec
	routes   prometheus.Gauge
	rejected prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "causeway", "routefile"
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "reloads_total", Help: "Versions of the routes file read, by result: loaded (now serving) or rejected (unreadable or invalid; counted once per distinct version)."},
			[]string{"result"}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "routes", Help: "Routes in the version of the routes file being served (the last good one)."}),
		rejected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "rejected", Help: "1 while the routes file's current version is rejected and the last good version keeps serving, else 0."}),
	}
	m.reloads.WithLabelValues(resultLoaded)
	m.reloads.WithLabelValues(resultRejected)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.reloads, m.routes, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register routes file metrics: %w", err)
		}
	}
	return m, nil
}

const (
	resultLoaded   = "loaded"
	resultRejected = "rejected"
)
