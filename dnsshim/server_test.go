package dnsshim

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// source is a swappable ViewSource.
type source struct{ v atomic.Pointer[catalog.View] }

func (s *source) View() *catalog.View { return s.v.Load() }

func entry(key string, rec any) *causewayv1.Entry {
	e := &causewayv1.Entry{Key: key}
	switch r := rec.(type) {
	case *causewayv1.ImportRecord:
		e.Record = &causewayv1.Entry_Import{Import: r}
	case *causewayv1.ExportRecord:
		e.Record = &causewayv1.Entry_Export{Export: r}
	case *causewayv1.GatewayRecord:
		e.Record = &causewayv1.Entry_Gateway{Gateway: r}
	}
	return e
}

func testView(headlessEndpoints int) *catalog.View {
	tcp := causewayv1.Protocol_PROTOCOL_TCP
	es := map[string]*causewayv1.Entry{}
	add := func(e *causewayv1.Entry) { es[e.GetKey()] = e }
	add(entry("imports/west/demo/echo", &causewayv1.ImportRecord{Namespace: "demo", Name: "echo", Cluster: "west",
		Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP, Ips: []string{"10.2.0.5"},
		Ports: []*causewayv1.ServicePort{{Name: "http", Port: 8080, Protocol: tcp}, {Port: 9090, Protocol: tcp}}}))
	add(entry("imports/east/demo/echo", &causewayv1.ImportRecord{Namespace: "demo", Name: "echo", Cluster: "east",
		Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP, Ips: []string{"10.1.0.5"}}))
	add(entry("imports/west/demo/db", &causewayv1.ImportRecord{Namespace: "demo", Name: "db", Cluster: "west",
		Type:  causewayv1.ServiceType_SERVICE_TYPE_HEADLESS,
		Ports: []*causewayv1.ServicePort{{Name: "pg", Port: 5432, Protocol: tcp}}}))
	add(entry("imports/west/demo/gone", &causewayv1.ImportRecord{Namespace: "demo", Name: "gone", Cluster: "west",
		Type: causewayv1.ServiceType_SERVICE_TYPE_HEADLESS}))
	var eps []*causewayv1.Endpoint
	for i := 0; i < headlessEndpoints; i++ {
		eps = append(eps, &causewayv1.Endpoint{Address: fmt.Sprintf("10.9.%d.%d", i/250, i%250+1), Hostname: fmt.Sprintf("db-%d", i), Ready: true})
	}
	eps = append(eps, &causewayv1.Endpoint{Address: "10.9.99.99", Hostname: "db-unready", Ready: false})
	add(entry("exports/demo/db/east", &causewayv1.ExportRecord{Namespace: "demo", Name: "db", Cluster: "east", Endpoints: eps}))
	add(entry("gateways/east/0", &causewayv1.GatewayRecord{Cluster: "east", Instance: "0"}))
	// local-direct: "near" is exported by west itself with ready endpoints
	// (answer its ClusterIP); "idle" has none ready and "parked" is drained
	// in west (answer the clusterset IP).
	for i, name := range []string{"near", "idle", "parked"} {
		ready := uint32(1)
		if name == "idle" {
			ready = 0
		}
		add(entry("imports/west/demo/"+name, &causewayv1.ImportRecord{Namespace: "demo", Name: name, Cluster: "west",
			Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP, Ips: []string{fmt.Sprintf("10.2.1.%d", i+1)}}))
		add(entry("exports/demo/"+name+"/west", &causewayv1.ExportRecord{Namespace: "demo", Name: name, Cluster: "west",
			Routing: causewayv1.RoutingPolicy_ROUTING_POLICY_LOCAL_DIRECT, ClusterIp: fmt.Sprintf("10.96.0.%d", i+1),
			ReadyPerZone: map[string]uint32{"z": ready}}))
	}
	es["drain/west/demo/parked"] = &causewayv1.Entry{Key: "drain/west/demo/parked",
		Record: &causewayv1.Entry_Drain{Drain: &causewayv1.DrainRecord{Cluster: "west", Namespace: "demo", Name: "parked"}}}
	return catalog.NewView(es, 42)
}

func startServer(t *testing.T, src ViewSource) (string, context.CancelFunc, chan error) {
	t.Helper()
	s, err := New(Config{Cluster: "west"}, src)
	require.NoError(t, err)
	pc, ln := listenPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pc, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return pc.LocalAddr().String(), cancel, done
}

// listenPair binds UDP and TCP on the same free loopback port; the UDP
// port may be taken for TCP, so it tries a few.
func listenPair(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
		lastErr = err
	}
	t.Fatalf("no port free for both UDP and TCP: %v", lastErr)
	return nil, nil
}

func query(t *testing.T, addr, transport, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(4096, false)
	}
	c := &dns.Client{Net: transport, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(m, addr)
	require.NoError(t, err)
	return r
}

func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if _, ok := rr.(*dns.OPT); ok {
			continue
		}
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	sort.Strings(out)
	return out
}

func TestConformance(t *testing.T) {
	src := &source{}
	src.v.Store(testView(3))
	addr, _, _ := startServer(t, src)
	const z = "clusterset.local."
	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		rcode   int
		answer  []string
		extra   []string
		soaAuth bool
	}{
		{"clusterset ip A", "echo.demo.svc." + z, dns.TypeA, dns.RcodeSuccess,
			[]string{"echo.demo.svc.clusterset.local. 5 IN A 10.2.0.5"}, nil, false},
		{"case-insensitive, case kept", "ECHO.Demo.SVC.ClusterSet.Local.", dns.TypeA, dns.RcodeSuccess,
			[]string{"ECHO.Demo.SVC.ClusterSet.Local. 5 IN A 10.2.0.5"}, nil, false},
		{"local-direct with ready local endpoints", "near.demo.svc." + z, dns.TypeA, dns.RcodeSuccess,
			[]string{"near.demo.svc.clusterset.local. 5 IN A 10.96.0.1"}, nil, false},
		{"local-direct without ready local endpoints", "idle.demo.svc." + z, dns.TypeA, dns.RcodeSuccess,
			[]string{"idle.demo.svc.clusterset.local. 5 IN A 10.2.1.2"}, nil, false},
		{"local-direct drained locally", "parked.demo.svc." + z, dns.TypeA, dns.RcodeSuccess,
			[]string{"parked.demo.svc.clusterset.local. 5 IN A 10.2.1.3"}, nil, false},
		{"AAAA without v6 is NODATA", "echo.demo.svc." + z, dns.TypeAAAA, dns.RcodeSuccess, nil, nil, true},
		{"TXT at a service is NODATA", "echo.demo.svc." + z, dns.TypeTXT, dns.RcodeSuccess, nil, nil, true},
		{"named port SRV", "_http._tcp.echo.demo.svc." + z, dns.TypeSRV, dns.RcodeSuccess,
			[]string{"_http._tcp.echo.demo.svc.clusterset.local. 5 IN SRV 0 100 8080 echo.demo.svc.clusterset.local."},
			[]string{"echo.demo.svc.clusterset.local. 5 IN A 10.2.0.5"}, false},
		{"SRV at service name (extension)", "echo.demo.svc." + z, dns.TypeSRV, dns.RcodeSuccess,
			[]string{"echo.demo.svc.clusterset.local. 5 IN SRV 0 100 8080 echo.demo.svc.clusterset.local."},
			[]string{"echo.demo.svc.clusterset.local. 5 IN A 10.2.0.5"}, false},
		{"wrong protocol SRV", "_http._udp.echo.demo.svc." + z, dns.TypeSRV, dns.RcodeNameError, nil, nil, true},
		{"unknown service", "nope.demo.svc." + z, dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"service of another cluster only", "other.demo.svc." + z, dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"clusterid.svc is never served", "east.echo.demo.svc." + z, dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"namespace is an empty non-terminal", "demo.svc." + z, dns.TypeA, dns.RcodeSuccess, nil, nil, true},
		{"svc is an empty non-terminal", "svc." + z, dns.TypeA, dns.RcodeSuccess, nil, nil, true},
		{"unknown namespace", "prod.svc." + z, dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"headless A lists ready endpoints", "db.demo.svc." + z, dns.TypeA, dns.RcodeSuccess, []string{
			"db.demo.svc.clusterset.local. 5 IN A 10.9.0.1",
			"db.demo.svc.clusterset.local. 5 IN A 10.9.0.2",
			"db.demo.svc.clusterset.local. 5 IN A 10.9.0.3"}, nil, false},
		{"headless per-pod name", "db-1.east.db.demo.svc." + z, dns.TypeA, dns.RcodeSuccess,
			[]string{"db-1.east.db.demo.svc.clusterset.local. 5 IN A 10.9.0.2"}, nil, false},
		{"headless unready pod", "db-unready.east.db.demo.svc." + z, dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"headless SRV targets pods", "_pg._tcp.db.demo.svc." + z, dns.TypeSRV, dns.RcodeSuccess, []string{
			"_pg._tcp.db.demo.svc.clusterset.local. 5 IN SRV 0 100 5432 db-0.east.db.demo.svc.clusterset.local.",
			"_pg._tcp.db.demo.svc.clusterset.local. 5 IN SRV 0 100 5432 db-1.east.db.demo.svc.clusterset.local.",
			"_pg._tcp.db.demo.svc.clusterset.local. 5 IN SRV 0 100 5432 db-2.east.db.demo.svc.clusterset.local."}, []string{
			"db-0.east.db.demo.svc.clusterset.local. 5 IN A 10.9.0.1",
			"db-1.east.db.demo.svc.clusterset.local. 5 IN A 10.9.0.2",
			"db-2.east.db.demo.svc.clusterset.local. 5 IN A 10.9.0.3"}, false},
		{"headless without ready endpoints", "gone.demo.svc." + z, dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"dns-version", "dns-version." + z, dns.TypeTXT, dns.RcodeSuccess,
			[]string{`dns-version.clusterset.local. 5 IN TXT "1.0.0"`}, nil, false},
		{"apex SOA", z, dns.TypeSOA, dns.RcodeSuccess,
			[]string{"clusterset.local. 5 IN SOA ns.dns.clusterset.local. hostmaster.clusterset.local. 42 7200 1800 86400 5"}, nil, false},
		{"apex NS", z, dns.TypeNS, dns.RcodeSuccess,
			[]string{"clusterset.local. 5 IN NS ns.dns.clusterset.local."}, nil, false},
		{"apex A is NODATA", z, dns.TypeA, dns.RcodeSuccess, nil, nil, true},
		{"outside the zone", "example.com.", dns.TypeA, dns.RcodeRefused, nil, nil, false},
		{"parent of the zone", "local.", dns.TypeSOA, dns.RcodeRefused, nil, nil, false},
	}
	for _, transport := range []string{"udp", "tcp"} {
		for _, tc := range tests {
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				r := query(t, addr, transport, tc.qname, tc.qtype, false)
				require.Equal(t, dns.RcodeToString[tc.rcode], dns.RcodeToString[r.Rcode])
				require.Equal(t, tc.answer, rrStrings(r.Answer))
				require.Equal(t, tc.extra, rrStrings(r.Extra))
				if tc.rcode != dns.RcodeRefused {
					require.True(t, r.Authoritative)
				}
				if tc.soaAuth {
					require.Len(t, r.Ns, 1)
					soa, ok := r.Ns[0].(*dns.SOA)
					require.True(t, ok, "authority is %v", r.Ns)
					require.Equal(t, uint32(5), soa.Minttl, "negative-caching TTL")
				} else {
					require.Empty(t, r.Ns)
				}
			})
		}
	}
}

func TestBadQueries(t *testing.T) {
	src := &source{}
	src.v.Store(testView(1))
	addr, _, _ := startServer(t, src)
	exchange := func(m *dns.Msg) *dns.Msg {
		r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, addr)
		require.NoError(t, err)
		return r
	}
	two := new(dns.Msg)
	two.SetQuestion("echo.demo.svc.clusterset.local.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	require.Equal(t, dns.RcodeFormatError, exchange(two).Rcode)

	notify := new(dns.Msg)
	notify.SetNotify("clusterset.local.")
	require.Equal(t, dns.RcodeNotImplemented, exchange(notify).Rcode)

	chaos := new(dns.Msg)
	chaos.SetQuestion("echo.demo.svc.clusterset.local.", dns.TypeA)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	require.Equal(t, dns.RcodeNotImplemented, exchange(chaos).Rcode)

	// A header followed by garbage gets FORMERR with the query's ID.
	gc, err := net.Dial("udp", addr)
	require.NoError(t, err)
	_, err = gc.Write([]byte{0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff})
	require.NoError(t, err)
	require.NoError(t, gc.SetReadDeadline(time.Now().Add(3*time.Second)))
	buf := make([]byte, 512)
	n, err := gc.Read(buf)
	require.NoError(t, err)
	gc.Close()
	reply := new(dns.Msg)
	require.NoError(t, reply.Unpack(buf[:n]))
	require.Equal(t, uint16(0xabcd), reply.Id)
	require.Equal(t, dns.RcodeFormatError, reply.Rcode)

	// Raw garbage over UDP must not stop the server.
	c, err := net.Dial("udp", addr)
	require.NoError(t, err)
	_, _ = c.Write([]byte{0x01, 0x02, 0x03})
	c.Close()
	require.Equal(t, dns.RcodeSuccess, query(t, addr, "udp", "echo.demo.svc.clusterset.local.", dns.TypeA, false).Rcode)
}

func TestTruncationAndTCPRetry(t *testing.T) {
	src := &source{}
	src.v.Store(testView(200))
	addr, _, _ := startServer(t, src)
	r := query(t, addr, "udp", "db.demo.svc.clusterset.local.", dns.TypeA, false)
	require.True(t, r.Truncated, "200 A records do not fit 512 bytes")
	require.Less(t, len(r.Answer), 200)
	r = query(t, addr, "udp", "db.demo.svc.clusterset.local.", dns.TypeA, true)
	require.NotNil(t, r.IsEdns0(), "EDNS0 answered with OPT")
	r = query(t, addr, "tcp", "db.demo.svc.clusterset.local.", dns.TypeA, false)
	require.False(t, r.Truncated)
	require.Len(t, r.Answer, 200)
}

func TestAnswersFollowTheView(t *testing.T) {
	src := &source{}
	src.v.Store(testView(1))
	addr, _, _ := startServer(t, src)
	name := "echo.demo.svc.clusterset.local."
	require.Equal(t, dns.RcodeSuccess, query(t, addr, "udp", name, dns.TypeA, false).Rcode)
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

// fakeWriter records the reply of ServeDNS.
type fakeWriter struct {
	dns.ResponseWriter
	msg *dns.Msg
}

func (w *fakeWriter) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *fakeWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
}
func (w *fakeWriter) WriteMsg(m *dns.Msg) error { w.msg = m; return nil }

func FuzzServeDNS(f *testing.F) {
	for _, name := range []string{"echo.demo.svc.clusterset.local.", "_pg._tcp.db.demo.svc.clusterset.local.", "x.", "clusterset.local."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeSRV)
		b, _ := m.Pack()
		f.Add(b)
	}
	src := &source{}
	src.v.Store(testView(5))
	s, err := New(Config{Cluster: "west"}, src)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		m := new(dns.Msg)
		if m.Unpack(data) != nil {
			return
		}
		w := &fakeWriter{}
		s.ServeDNS(w, m)
		if w.msg == nil {
			t.Fatal("no reply written")
		}
		if _, err := w.msg.Pack(); err != nil {
			t.Fatalf("reply does not pack: %v", err)
		}
	})
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
