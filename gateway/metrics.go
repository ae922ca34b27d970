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
	streams      *streamCounter
	active       *prometheus.GaugeVec
	bytes        *prometheus.CounterVec
	handshakes   *prometheus.CounterVec
	retries      prometheus.Counter
	duration     *prometheus.HistogramVec
	ejections    *prometheus.CounterVec // outlier ejections by peer_cluster
	ejected      *prometheus.GaugeVec   // 1 while a peer_cluster is ejected
	replaced     *prometheus.CounterVec // connections replaced or closed by reverify, by role and reason
	listeners    *prometheus.GaugeVec   // egress listeners by state (open, failed)
	listenErrors *prometheus.CounterVec // failed attempts to open an egress listener, by reason
	// limitRefusals counts flows, streams and connections refused by a
	// fairness limit (limits.go), by limit.
	limitRefusals *prometheus.CounterVec
	// dialErrors counts failed dials of local backends, by reason
	// (dialerr.go); the detail is logged here, never sent to a peer.
	dialErrors *prometheus.CounterVec

	// decisions counts ingress authorization outcomes (authorize.go).
	decisions *decisionCounter

	egress, ingress flowMetrics // the direction series, looked up once

	l7 l7Metrics // requests of L7 ports
}

// flowMetrics are the series of one direction that every flow touches,
// resolved once: a label lookup per flow costs a hash and a map access
// under the vector's lock.
type flowMetrics struct {
	active   prometheus.Gauge
	bytes    prometheus.Counter
	duration prometheus.Observer
}

func (m *metrics) flowMetrics(direction string) flowMetrics {
	return flowMetrics{
		active:   m.active.WithLabelValues(direction),
		bytes:    m.bytes.WithLabelValues(direction),
		duration: m.duration.WithLabelValues(direction),
	}
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
			Name: "handshakes_total", Help: "QUIC handshakes by role (client, server) and result: ok, error (no peer identity), rejected (server: the handshake never completed, e.g. refused during TLS or timed out)."},
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
	m.replaced = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "connections_replaced_total", Help: "Peer connections re-verified and replaced (role client: dialed here) or closed (role server: accepted here), " +
			"by reason: peer_untrusted (the peer's chain no longer verifies), peer_expiring (it expires soon or has expired), renewed (this gateway's certificate was renewed)."},
		[]string{"role", "reason"})
	m.listeners = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
		Name: "egress_listeners", Help: "Egress listeners the catalog asks for, by state: open, or failed (the address could not be bound; retried with back-off)."},
		[]string{"state"})
	m.listenErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "listen_errors_total", Help: "Failed attempts to open an egress listener, by reason: address_not_available (not a local address), address_in_use, permission_denied, other."},
		[]string{"reason"})
	m.limitRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "limit_refusals_total", Help: "Flows, streams and connections refused by a fairness limit, by limit: source_flows (egress, a client address at maxFlowsPerSource), " +
			"stream_credit (egress, the peer connection's stream credit used up), peer_connections, peer_streams, peer_header_bytes (ingress, a peer cluster at its cap)."},
		[]string{"limit"})
	for _, l := range limitNames {
		m.limitRefusals.WithLabelValues(l)
	}
	m.dialErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "backend_dial_errors_total", Help: "Failed dials of local backend endpoints, by reason: refused, timeout, unreachable, other. Peers get only the code DIAL_FAILED; the detail is logged."},
		[]string{"reason"})
	m.decisions = &decisionCounter{vec: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "authz_decisions_total", Help: "Ingress authorization outcomes of flows and L7 requests by service (namespace/name, \"other\" outside the catalog), " +
			"source cluster and result: allowed, denied (by policy or default), rate_limited, bad_identity (a source identity the peer may not claim)."},
		[]string{"service", "source_cluster", "result"})}
	m.handshakes.WithLabelValues("server", "rejected")
	m.egress, m.ingress = m.flowMetrics("egress"), m.flowMetrics("ingress")
	m.l7 = newL7Metrics(reg)
	if reg != nil {
		reg.MustRegister(m.ejections, m.ejected, m.replaced, m.listeners, m.listenErrors, m.limitRefusals, m.dialErrors)
		reg.MustRegister(m.streams.vec, m.decisions.vec, m.active, m.bytes, m.handshakes, m.retries, m.duration)
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
// series it created, so a flow's count costs one map lookup, and forget
// can delete the series of services and peers that left the catalog.
type streamCounter struct {
	vec *prometheus.CounterVec

	mu     sync.Mutex // guards series
	series map[streamSeries]prometheus.Counter
}

// streamSeries is the label values of one streams_total series.
type streamSeries struct{ direction, service, peer, result string }

// inc counts one finished flow. service and peer must come from
// serviceLabel and peerLabel (or be labelOther).
func (s *streamCounter) inc(direction, service, peer, result string) {
	k := streamSeries{direction, service, peer, result}
	s.mu.Lock()
	c, ok := s.series[k]
	if !ok {
		if s.series == nil {
			s.series = map[streamSeries]prometheus.Counter{}
		}
		c = s.vec.WithLabelValues(direction, service, peer, result)
		s.series[k] = c
	}
	s.mu.Unlock()
	c.Inc()
}

// forget deletes the series of services and peers that left v.
func (s *streamCounter) forget(v *catalog.View) {
	s.mu.Lock()
	defer s.mu.Unlock()
	services, peers := map[string]bool{}, map[string]bool{} // label value -> stays
	for k := range s.series {
		if _, seen := services[k.service]; !seen {
			services[k.service] = keepService(v, k.service)
			if !services[k.service] {
				s.vec.DeletePartialMatch(prometheus.Labels{"service": k.service})
			}
		}
		if _, seen := peers[k.peer]; !seen {
			peers[k.peer] = keepPeer(v, k.peer)
			if !peers[k.peer] {
				s.vec.DeletePartialMatch(prometheus.Labels{"peer_cluster": k.peer})
			}
		}
		if !services[k.service] || !peers[k.peer] {
			delete(s.series, k)
		}
	}
}

// keepService reports whether the series of service stay: it is
// labelOther or some cluster in v exports it.
func keepService(v *catalog.View, service string) bool {
	if service == labelOther {
		return true
	}
	ns, name, ok := strings.Cut(service, "/")
	return ok && len(v.Exports(catalog.ServiceKey{Namespace: ns, Name: name})) > 0
}

// keepPeer reports whether the series of peer stay: it is labelOther or a
// member cluster of v.
func keepPeer(v *catalog.View, peer string) bool {
	if peer == labelOther {
		return true
	}
	_, ok := v.Cluster(peer)
	return ok
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

// decisionCounter is causeway_gateway_authz_decisions_total; like
// streamCounter it remembers its series (one map lookup per decision) and
// forgets those of services and clusters that left the catalog.
type decisionCounter struct {
	vec *prometheus.CounterVec

	mu     sync.Mutex // guards series
	series map[decisionSeries]prometheus.Counter
}

// decisionSeries is the label values of one authz_decisions_total series.
type decisionSeries struct{ service, source, result string }

// inc counts one decision. service and source must come from serviceLabel
// and peerLabel (or be labelOther).
func (d *decisionCounter) inc(service, source, result string) {
	k := decisionSeries{service, source, result}
	d.mu.Lock()
	c, ok := d.series[k]
	if !ok {
		if d.series == nil {
			d.series = map[decisionSeries]prometheus.Counter{}
		}
		c = d.vec.WithLabelValues(service, source, result)
		d.series[k] = c
	}
	d.mu.Unlock()
	c.Inc()
}

// forget deletes the series of services and source clusters that left v.
func (d *decisionCounter) forget(v *catalog.View) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.series {
		if !keepService(v, k.service) || !keepPeer(v, k.source) {
			d.vec.DeleteLabelValues(k.service, k.source, k.result)
			delete(d.series, k)
		}
	}
}
