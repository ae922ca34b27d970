package gateway

import (
	"strings"
	"sync"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/prometheus/client_golang/prometheus"
)

// Stream results (the "result" label).
const (
	resultOK       = "ok"
	resultRefused  = "refused"
	resultNoTarget = "no_target"
	resultError    = "error"
)

type metrics struct {
	streams    *streamCounter
	active     *prometheus.GaugeVec
	bytes      *prometheus.CounterVec
	handshakes *prometheus.CounterVec
	retries    prometheus.Counter
	duration   *prometheus.HistogramVec
	ejections  *prometheus.CounterVec // outlier ejections by peer_cluster
	ejected    *prometheus.GaugeVec   // 1 while a peer_cluster is ejected
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "causeway", "gateway"
	m := &metrics{
		streams: &streamCounter{vec: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "streams_total", Help: "Tunneled flows by direction (egress, ingress), service (namespace/name, \"other\" outside the catalog), peer cluster and result."},
			[]string{"direction", "service", "peer_cluster", "result"})},
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
	m.ejections = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "outlier_ejections_total", Help: "Times outlier detection ejected a cluster from egress balancing, by peer cluster."},
		[]string{"peer_cluster"})
	m.ejected = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
		Name: "outlier_ejected", Help: "1 while outlier detection keeps a peer cluster out of egress balancing, else 0."},
		[]string{"peer_cluster"})
	if reg != nil {
		reg.MustRegister(m.ejections, m.ejected)
		reg.MustRegister(m.streams.vec, m.active, m.bytes, m.handshakes, m.retries, m.duration)
	}
	return m
}

// labelOther is the service or peer label of a flow whose service or peer
// is not in the catalog, so hostile headers cannot grow the label set.
const labelOther = "other"

// serviceLabel is the service label of key: its name when some cluster
// exports it, else labelOther.
func serviceLabel(v *catalog.View, key catalog.ServiceKey) string {
	if len(v.Exports(key)) == 0 {
		return labelOther
	}
	return key.String()
}

// peerLabel is the peer label of cluster: its name when it is a member,
// else labelOther.
func peerLabel(v *catalog.View, cluster string) string {
	if _, ok := v.Cluster(cluster); !ok {
		return labelOther
	}
	return cluster
}

// streamCounter is causeway_gateway_streams_total. It remembers the
// services and peers it labeled so forget can delete their series once
// they leave the catalog.
type streamCounter struct {
	vec *prometheus.CounterVec

	mu       sync.Mutex // guards services, peers
	services map[string]bool
	peers    map[string]bool
}

// inc counts one finished flow. service and peer must come from
// serviceLabel and peerLabel (or be labelOther).
func (s *streamCounter) inc(direction, service, peer, result string) {
	s.mu.Lock()
	if s.services == nil {
		s.services, s.peers = map[string]bool{}, map[string]bool{}
	}
	s.services[service], s.peers[peer] = true, true
	s.mu.Unlock()
	s.vec.WithLabelValues(direction, service, peer, result).Inc()
}

// forget deletes the series of services and peers that left v.
func (s *streamCounter) forget(v *catalog.View) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for svc := range s.services {
		if svc == labelOther {
			continue
		}
		if ns, name, ok := strings.Cut(svc, "/"); ok && len(v.Exports(catalog.ServiceKey{Namespace: ns, Name: name})) > 0 {
			continue
		}
		s.vec.DeletePartialMatch(prometheus.Labels{"service": svc})
		delete(s.services, svc)
	}
	for peer := range s.peers {
		if _, ok := v.Cluster(peer); ok || peer == labelOther {
			continue
		}
		s.vec.DeletePartialMatch(prometheus.Labels{"peer_cluster": peer})
		delete(s.peers, peer)
	}
}

// rttCollector is causeway_gateway_peer_rtt_seconds, read from quic-go's
// connection statistics at scrape time.
type rttCollector struct {
	desc *prometheus.Desc
	rtts func() map[string]time.Duration
}

func newRTTCollector(rtts func() map[string]time.Duration) *rttCollector {
	return &rttCollector{rtts: rtts, desc: prometheus.NewDesc("causeway_gateway_peer_rtt_seconds",
		"Smoothed RTT of the QUIC connections to each peer cluster's gateways (mean over connections).",
		[]string{"peer_cluster"}, nil)}
}

func (c *rttCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *rttCollector) Collect(ch chan<- prometheus.Metric) {
	for peer, rtt := range c.rtts() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, rtt.Seconds(), peer)
	}
}

// forgetPeerCluster deletes the outlier series of a cluster that left the
// federation.
func (m *metrics) forgetPeerCluster(cluster string) {
	m.ejections.DeleteLabelValues(cluster)
	m.ejected.DeleteLabelValues(cluster)
}
