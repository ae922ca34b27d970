package dnsshim

import (
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	queries  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "causeway", Subsystem: "dns",
			Name: "queries_total", Help: "DNS queries by type (A, AAAA, SRV, TXT, SOA, NS, other) and response code."},
			[]string{"qtype", "rcode"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "causeway", Subsystem: "dns",
			Name: "request_duration_seconds", Help: "Time to answer a query, by transport.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 8)}, []string{"transport"}),
	}
	if reg != nil {
		reg.MustRegister(m.queries, m.duration)
	}
	return m
}

func qtypeLabel(t uint16) string {
	switch t {
	case dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeSOA, dns.TypeNS:
		return dns.TypeToString[t]
	}
	return "other"
}
