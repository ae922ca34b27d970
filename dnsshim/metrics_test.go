package dnsshim

import (
	"time"

	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestSecurityF15_BadversCountedAsBadvers sends EDNS version 1 over UDP
// and TCP and checks the answers are counted as rcode="BADVERS" (miekg/dns
// names code 16 BADSIG, which the shim never answers).
func TestSecurityF15_BadversCountedAsBadvers(t *testing.T) {
	src := &source{}
	src.v.Store(testView(3))
	reg := prometheus.NewRegistry()
	addr, _, _ := startServerWith(t, Config{Cluster: "west", Registerer: reg}, src)
	for _, transport := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("echo.demo.svc.clusterset.local.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().SetVersion(1)
		r := exchange(t, addr, transport, m)
		require.Equal(t, dns.RcodeBadVers, r.Rcode, transport)
	}
	// The TCP answer is counted after it is written: wait for both.
	require.Eventually(t, func() bool { return queriesCount(t, reg, "A", "BADVERS") == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Zero(t, queriesCount(t, reg, "A", "BADSIG"))
}

// queriesCount is causeway_dns_queries_total{qtype, rcode} in reg (0 when
// the series does not exist).
func queriesCount(t testing.TB, reg *prometheus.Registry, qtype, rcode string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "causeway_dns_queries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["qtype"] == qtype && labels["rcode"] == rcode {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
