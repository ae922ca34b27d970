package gateway

import "github.com/prometheus/client_golang/prometheus"

// Stream results (the "result" label).
const (
	resultOK       = "ok"
	resultRefused  = "refused"
	resultNoTarget = "no_target"
	resultError    = "error"
)

type metrics struct {
	streams    *prometheus.CounterVec
	active     *prometheus.GaugeVec
	bytes      *prometheus.CounterVec
	handshakes *prometheus.CounterVec
	retries    prometheus.Counter
	duration   *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "causeway", "gateway"
	m := &metrics{
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "streams_total", Help: "Tunneled flows by direction (egress, ingress) and result."},
			[]string{"direction", "result"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "active_streams", Help: "Flows currently open, by direction."}, []string{"direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "bytes_total", Help: "Payload bytes carried, by direction (egress = client to peer)."},
			[]string{"direction"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "handshakes_total", Help: "QUIC handshakes by role (client, server) and result."},
			[]string{"role", "result"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "stream_retries_total", Help: "Egress flows moved to the next candidate after a refusal."}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "stream_duration_seconds", Help: "Lifetime of tunneled flows.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"direction"}),
	}
	if reg != nil {
		reg.MustRegister(m.streams, m.active, m.bytes, m.handshakes, m.retries, m.duration)
	}
	return m
}
