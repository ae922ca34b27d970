package dnsshim

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// udpFrom is a UDP socket bound to the loopback address ip.
func udpFrom(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func packQuery(t *testing.T, id uint16, name string) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Id = id
	b, err := m.Pack()
	require.NoError(t, err)
	return b
}

// TestSecurityF12_FloodFromOneSourceDoesNotStarveOthers replays F12 against
// a real shim on UDP: one source floods (before: 1.35 M queries, 1.22 M
// answered, and a second source lost 10% of its queries). Now the flooder
// gets at most its burst plus its rate of full answers, every second one of
// the rest an empty TC answer (no amplification) and the others nothing,
// while a second source in another bucket gets every answer.
func TestSecurityF12_FloodFromOneSourceDoesNotStarveOthers(t *testing.T) {
	src := &source{}
	src.v.Store(testView(3))
	reg := prometheus.NewRegistry()
	const qps, burst, flood = 50, 50, 3000
	addr, _, _ := startServerWith(t, Config{Cluster: "west", Registerer: reg, RateLimit: RateLimit{QPS: qps, Burst: burst, LimitLoopback: true}}, src)
	to, err := net.ResolveUDPAddr("udp", addr)
	require.NoError(t, err)

	flooder := udpFrom(t, "127.0.0.1")
	q := packQuery(t, 1, "echo.demo.svc.clusterset.local.")
	var full, truncated int
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() { // reads the flooder's answers until a second passes without one
		buf := make([]byte, 2048)
		for {
			_ = flooder.SetReadDeadline(time.Now().Add(time.Second))
			n, err := flooder.Read(buf)
			if err != nil {
				return
			}
			r := new(dns.Msg)
			if r.Unpack(buf[:n]) != nil {
				continue
			}
			if r.Truncated {
				assert.Empty(t, r.Answer)
				assert.LessOrEqual(t, n, len(q), "a TC answer is no larger than the query")
				truncated++
			} else {
				full++
			}
		}
	})
	for range flood {
		_, err := flooder.WriteToUDP(q, to)
		require.NoError(t, err)
	}

	// A second source meanwhile: every query answered (a datagram the
	// kernel drops under the flood is retried, at most 3 times).
	other := udpFrom(t, "127.0.1.1")
	answered := 0
	buf := make([]byte, 2048)
	for i := range 40 {
		b := packQuery(t, uint16(100+i), "echo.demo.svc.clusterset.local.")
		for range 3 {
			_, err := other.WriteToUDP(b, to)
			require.NoError(t, err)
			require.NoError(t, other.SetReadDeadline(time.Now().Add(time.Second)))
			n, err := other.Read(buf)
			if err != nil {
				continue
			}
			r := new(dns.Msg)
			require.NoError(t, r.Unpack(buf[:n]))
			require.False(t, r.Truncated)
			require.Len(t, r.Answer, 1)
			answered++
			break
		}
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()

	require.Equal(t, 40, answered, "the second source is not starved")
	require.LessOrEqual(t, float64(full), burst+qps*elapsed+1, "the flooder gets its burst and rate, no more (%d in %.1fs)", full, elapsed)
	require.Greater(t, full, burst/2, "the flooder is answered up to its burst")
	require.Positive(t, truncated, "limited queries are answered TC now and then")
	require.Less(t, full+truncated, flood/2)
	require.Positive(t, queriesLimited(t, reg, "dropped"))
	require.Positive(t, queriesLimited(t, reg, "truncated"))
}

// TestRateLimitSparesLoopbackByDefault: without LimitLoopback, a loopback
// source is not limited (dev and the benchmark query over loopback).
func TestRateLimitSparesLoopbackByDefault(t *testing.T) {
	src := &source{}
	src.v.Store(testView(3))
	addr, _, _ := startServerWith(t, Config{Cluster: "west", RateLimit: RateLimit{QPS: 1, Burst: 1}}, src)
	for range 5 {
		r := query(t, addr, "udp", "echo.demo.svc.clusterset.local.", dns.TypeA, false)
		require.False(t, r.Truncated)
		require.Len(t, r.Answer, 1)
	}
}

// queriesLimited is causeway_dns_rate_limited_total{action}.
func queriesLimited(t *testing.T, reg *prometheus.Registry, action string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "causeway_dns_rate_limited_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == action {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestSecurityF12_TruncatedAnswersDoNotAmplify: a headless answer that
// does not fit a UDP answer is sent empty with TC (before: cut to 1226
// bytes for a 58-byte query, 21x), so it is no larger than the query; over
// TCP the client gets every record.
func TestSecurityF12_TruncatedAnswersDoNotAmplify(t *testing.T) {
	src := &source{}
	src.v.Store(testView(100))
	addr, _, _ := startServer(t, src)
	for _, edns := range []bool{false, true} {
		m := new(dns.Msg)
		m.SetQuestion("db.demo.svc.clusterset.local.", dns.TypeA)
		if edns {
			m.SetEdns0(4096, false)
		}
		q, err := m.Pack()
		require.NoError(t, err)
		c := udpFrom(t, "127.0.0.1")
		to, err := net.ResolveUDPAddr("udp", addr)
		require.NoError(t, err)
		_, err = c.WriteToUDP(q, to)
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(3*time.Second)))
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		require.NoError(t, err)
		r := new(dns.Msg)
		require.NoError(t, r.Unpack(buf[:n]))
		require.True(t, r.Truncated, "edns %v", edns)
		require.Empty(t, r.Answer)
		require.LessOrEqual(t, n, len(q), "edns %v: answer %d bytes for a %d-byte query", edns, n, len(q))
	}
	r := query(t, addr, "tcp", "db.demo.svc.clusterset.local.", dns.TypeA, true)
	require.False(t, r.Truncated)
	require.Len(t, r.Answer, 100)
}
