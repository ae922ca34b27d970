package dnsshim

import (
	"strconv"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics holds the shim's collectors and their resolved children, so a
// query never hashes label values.
type metrics struct {
	queries     *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	udpDuration prometheus.Observer
	tcpDuration prometheus.Observer

	// limited counts UDP queries over their source's rate limit by
	// action; its two children are resolved once.
	limited          *prometheus.CounterVec
	limitedTruncated prometheus.Counter
	limitedDropped   prometheus.Counter

	// counters[qtype index][rcode] are children of queries, resolved on
	// first use.
	counters [len(qtypeLabels)][32]atomic.Pointer[prometheus.Counter]
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "causeway", Subsystem: "dns",
			Name: "queries_total", Help: "DNS queries by type (A, AAAA, SRV, TXT, SOA, NS, other) and response code."},
			[]string{"qtype", "rcode"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "causeway", Subsystem: "dns",
			Name: "request_duration_seconds", Help: "Time to answer a query, from reading it to sending the answer, by transport.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 9)}, []string{"transport"}),
	}
	m.udpDuration = m.duration.WithLabelValues("udp")
	m.tcpDuration = m.duration.WithLabelValues("tcp")
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "causeway", Subsystem: "dns",
		Name: "rate_limited_total", Help: "UDP queries over their source's rate limit, by action: truncated (an empty TC answer) or dropped."},
		[]string{"action"})
	m.limitedTruncated = m.limited.WithLabelValues("truncated")
	m.limitedDropped = m.limited.WithLabelValues("dropped")
	if reg != nil {
		reg.MustRegister(m.queries, m.duration, m.limited)
	}
	return m
}

// qtypeLabels are the qtype label values; the last one is for every other
// type.
var qtypeLabels = [...]string{"A", "AAAA", "SRV", "TXT", "SOA", "NS", "other"}

func qtypeIndex(t uint16) int {
	switch t {
	case dns.TypeA:
		return 0
	case dns.TypeAAAA:
		return 1
	case dns.TypeSRV:
		return 2
	case dns.TypeTXT:
		return 3
	case dns.TypeSOA:
		return 4
	case dns.TypeNS:
		return 5
	}
	return len(qtypeLabels) - 1
}

// count returns the counter of an answer with rcode to r.
func (m *metrics) count(r *dns.Msg, rcode int) prometheus.Counter {
	qtype := uint16(0) // "other" when there is not exactly one question
	if len(r.Question) == 1 {
		qtype = r.Question[0].Qtype
	}
	return m.counter(qtype, rcode)
}

// counter returns the child of queries for qtype and rcode.
func (m *metrics) counter(qtype uint16, rcode int) prometheus.Counter {
	qi := qtypeIndex(qtype)
	if rcode < 0 || rcode >= len(m.counters[qi]) {
		return m.queries.WithLabelValues(qtypeLabels[qi], rcodeLabel(rcode))
	}
	p := &m.counters[qi][rcode]
	if c := p.Load(); c != nil {
		return *c
	}
	c := m.queries.WithLabelValues(qtypeLabels[qi], rcodeLabel(rcode))
	p.Store(&c)
	return c
}

// rcodeLabel names rcode for the rcode label. 16 is BADVERS: miekg/dns
// names it BADSIG (the TSIG meaning of the same code), but the shim does no
// TSIG and answers 16 only to an unknown EDNS version.
func rcodeLabel(rcode int) string {
	if rcode == dns.RcodeBadVers {
		return "BADVERS"
	}
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return strconv.Itoa(rcode)
}
