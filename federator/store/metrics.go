package store

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	decodeErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "causeway",
			Subsystem: "store",
			Name:      "decode_errors_total",
			Help:      "etcd values skipped because their schema version is unknown or they do not decode, by key kind.",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.decodeErrors)
	}
	return m
}
