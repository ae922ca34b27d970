package dnsshim

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAnswersFollowTheView(t *testing.T) {
	src := &source{}
	src.v.Store(testView(1))
	addr, _, _ := startServer(t, src)
	name := "echo.demo.svc.clusterset.local."
	for range 3 { // the UDP path caches the answer
		require.Equal(t, dns.RcodeSuccess, query(t, addr, "udp", name, dns.TypeA, false).Rcode)
	}
	src.v.Store(catalog.NewView(map[string]*causewayv1.Entry{}, 43))
	require.Equal(t, dns.RcodeNameError, query(t, addr, "udp", name, dns.TypeA, false).Rcode)
}

func TestShutdownFreesPorts(t *testing.T) {
	src := &source{}
	src.v.Store(testView(1))
	addr, cancel, done := startServer(t, src)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
		done <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	require.NoError(t, err)
	pc.Close()
}

func TestEDNS(t *testing.T) {
	src := &source{}
	src.v.Store(testView(100))
	addr, _, _ := startServer(t, src)
	exchange := func(m *dns.Msg) (*dns.Msg, int) {
		t.Helper()
		conn, err := net.Dial("udp", addr)
		require.NoError(t, err)
		defer conn.Close()
		b, err := m.Pack()
		require.NoError(t, err)
		_, err = conn.Write(b)
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(3*time.Second)))
		buf := make([]byte, 65535)
		n, err := conn.Read(buf)
		require.NoError(t, err)
		r := new(dns.Msg)
		require.NoError(t, r.Unpack(buf[:n]))
		return r, n
	}

	// The client offers 4096 bytes; the shim advertises and sends at most 1232.
	m := new(dns.Msg)
	m.SetQuestion("db.demo.svc.clusterset.local.", dns.TypeA)
	m.SetEdns0(4096, true)
	r, n := exchange(m)
	require.LessOrEqual(t, n, 1232)
	require.True(t, r.Truncated)
	opt := r.IsEdns0()
	require.NotNil(t, opt)
	require.Equal(t, uint16(1232), opt.UDPSize())
	require.True(t, opt.Do(), "DO is copied")

	// An unknown EDNS version gets BADVERS with our OPT.
	m = new(dns.Msg)
	m.SetQuestion("echo.demo.svc.clusterset.local.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	r, _ = exchange(m)
	require.Equal(t, dns.RcodeBadVers, r.Rcode)
	require.NotNil(t, r.IsEdns0())
	require.Empty(t, r.Answer)
}

// nilAddrWriter is a writer without addresses.
type nilAddrWriter struct{ fakeWriter }

func (w *nilAddrWriter) LocalAddr() net.Addr  { return nil }
func (w *nilAddrWriter) RemoteAddr() net.Addr { return nil }

func TestEdgeCases(t *testing.T) {
	es := map[string]*causewayv1.Entry{}
	add := func(e *causewayv1.Entry) { es[e.GetKey()] = e }
	add(entry("imports/west/demo/web", &causewayv1.ImportRecord{Namespace: "demo", Name: "web", Cluster: "west",
		Ips: []string{"10.0.0.1"}, Ports: []*causewayv1.ServicePort{{Name: "http", Port: 80}}}))
	add(entry("imports/west/other/h", &causewayv1.ImportRecord{Namespace: "other", Name: "h", Cluster: "west",
		Type: causewayv1.ServiceType_SERVICE_TYPE_HEADLESS}))
	src := &source{}
	src.v.Store(catalog.NewView(es, 7))
	s, err := New(Config{Cluster: "west"}, src)
	require.NoError(t, err)
	ask := func(name string, qtype uint16) *dns.Msg {
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		w := &nilAddrWriter{}
		s.ServeDNS(w, q)
		require.NotNil(t, w.msg)
		return w.msg
	}
	r := ask("_http._tcp.web.demo.svc.clusterset.local.", dns.TypeSRV)
	require.Equal(t, dns.RcodeSuccess, r.Rcode, "an unspecified protocol is TCP")
	require.Len(t, r.Answer, 1)
	require.Equal(t, dns.RcodeNameError, ask("h.other.svc.clusterset.local.", dns.TypeA).Rcode)
	require.Equal(t, dns.RcodeNameError, ask("other.svc.clusterset.local.", dns.TypeA).Rcode,
		"a namespace whose only service is not shown does not exist either")
	require.Equal(t, dns.RcodeSuccess, ask("ns.dns.clusterset.local.", dns.TypeA).Rcode, "no address, no panic")
}

// stubResolve asks over UDP and retries over TCP when the answer is
// truncated, as stub resolvers do.
func stubResolve(t *testing.T, addr, name string, qtype uint16) (*dns.Msg, bool) {
	t.Helper()
	r := query(t, addr, "udp", name, qtype, false)
	if !r.Truncated {
		return r, false
	}
	return query(t, addr, "tcp", name, qtype, false), true
}

func TestTruncationAndTCPRetry(t *testing.T) {
	src := &source{}
	src.v.Store(testView(200))
	addr, _, _ := startServer(t, src)
	r, retried := stubResolve(t, addr, "db.demo.svc.clusterset.local.", dns.TypeA)
	require.True(t, retried, "200 A records do not fit 512 bytes")
	require.False(t, r.Truncated)
	require.Len(t, r.Answer, 200)

	// SRV: additional records go before answers are cut, without TC.
	r = query(t, addr, "udp", "_pg._tcp.db.demo.svc.clusterset.local.", dns.TypeSRV, true)
	require.True(t, r.Truncated)
	require.Empty(t, rrStrings(r.Extra))
	r, _ = stubResolve(t, addr, "_pg._tcp.db.demo.svc.clusterset.local.", dns.TypeSRV)
	require.Len(t, r.Answer, 200)
	require.Len(t, r.Extra, 200)
}

func TestConfiguredTTL(t *testing.T) {
	src := &source{}
	src.v.Store(testView(1))
	addr, _, _ := startServerWith(t, Config{Cluster: "west", TTL: 30 * time.Second}, src)
	for _, transport := range []string{"udp", "tcp"} {
		r := query(t, addr, transport, "echo.demo.svc.clusterset.local.", dns.TypeA, false)
		require.Len(t, r.Answer, 1)
		require.Equal(t, uint32(30), r.Answer[0].Header().Ttl)
		r = query(t, addr, transport, "nope.demo.svc.clusterset.local.", dns.TypeA, false)
		require.Equal(t, dns.RcodeNameError, r.Rcode)
		require.Len(t, r.Ns, 1)
		require.Equal(t, uint32(30), r.Ns[0].Header().Ttl)
		require.Equal(t, uint32(30), r.Ns[0].(*dns.SOA).Minttl)
	}
}

// readySource is a source that is not ready until ready is set.
type readySource struct {
	source
	ready chan struct{}
}

func (s *readySource) IsReady() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

func TestServfailUntilCatalogReady(t *testing.T) {
	src := &readySource{ready: make(chan struct{})}
	src.v.Store(catalog.NewView(map[string]*causewayv1.Entry{}, 0))
	addr, _, _ := startServer(t, src)
	for _, transport := range []string{"udp", "tcp"} {
		for range 2 { // never cached
			r := query(t, addr, transport, "echo.demo.svc.clusterset.local.", dns.TypeA, false)
			require.Equal(t, dns.RcodeServerFailure, r.Rcode, transport)
		}
		require.Equal(t, dns.RcodeRefused, query(t, addr, transport, "example.com.", dns.TypeA, false).Rcode)
	}
	src.v.Store(testView(1))
	close(src.ready)
	for _, transport := range []string{"udp", "tcp"} {
		r := query(t, addr, transport, "echo.demo.svc.clusterset.local.", dns.TypeA, false)
		require.Equal(t, dns.RcodeSuccess, r.Rcode, transport)
	}
}

func TestMetrics(t *testing.T) {
	src := &source{}
	src.v.Store(testView(1))
	reg := prometheus.NewPedanticRegistry()
	addr, _, _ := startServerWith(t, Config{Cluster: "west", Registerer: reg}, src)
	for _, transport := range []string{"udp", "tcp"} {
		for range 3 {
			query(t, addr, transport, "echo.demo.svc.clusterset.local.", dns.TypeA, false)
		}
		query(t, addr, transport, "nope.demo.svc.clusterset.local.", dns.TypeA, false)
		query(t, addr, transport, "echo.demo.svc.clusterset.local.", dns.TypeSRV, false)
		query(t, addr, transport, "example.com.", dns.TypeMX, false)
	}
	// The UDP reader counts after sending, so the last UDP answer may be
	// counted just after the client has it: wait for it.
	want := `
# HELP causeway_dns_queries_total DNS queries by type (A, AAAA, SRV, TXT, SOA, NS, other) and response code.
# TYPE causeway_dns_queries_total counter
causeway_dns_queries_total{qtype="A",rcode="NOERROR"} 6
causeway_dns_queries_total{qtype="A",rcode="NXDOMAIN"} 2
causeway_dns_queries_total{qtype="SRV",rcode="NOERROR"} 2
causeway_dns_queries_total{qtype="other",rcode="REFUSED"} 2
`
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, testutil.GatherAndCompare(reg, strings.NewReader(want), "causeway_dns_queries_total"))
		assert.Equal(c, uint64(6), histogramCount(c, reg, "udp"), "udp requests timed")
		assert.Equal(c, uint64(6), histogramCount(c, reg, "tcp"), "tcp requests timed")
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "causeway_dns_queries_total"))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// histogramCount is the number of observations of the latency histogram
// for transport.
func histogramCount(t require.TestingT, reg *prometheus.Registry, transport string) uint64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "causeway_dns_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "transport" && l.GetValue() == transport {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// wrappedConn hides the *net.UDPConn, so the server takes its generic
// one-datagram-at-a-time path.
type wrappedConn struct{ net.PacketConn }

func TestGenericPacketConn(t *testing.T) {
	src := &source{}
	src.v.Store(testView(200))
	s, err := New(Config{Cluster: "west"}, src)
	require.NoError(t, err)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, wrappedConn{pc}, nil) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	addr := pc.LocalAddr().String()
	for range 2 {
		r := query(t, addr, "udp", "echo.demo.svc.clusterset.local.", dns.TypeA, false)
		require.Equal(t, []string{"echo.demo.svc.clusterset.local. 5 IN A 10.2.0.5"}, rrStrings(r.Answer))
	}
	r := query(t, addr, "udp", "db.demo.svc.clusterset.local.", dns.TypeA, false)
	require.True(t, r.Truncated)
	r = rawExchange(t, addr, "udp", append(header(0x4242, 0x0100, 1, 0, 0, 0), 0xff))
	require.Equal(t, uint16(0x4242), r.Id)
	require.Equal(t, dns.RcodeFormatError, r.Rcode)
}
