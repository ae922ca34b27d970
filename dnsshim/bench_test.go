package dnsshim

import (
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkServeDNS measures the handler alone (no sockets): the per-query
// work the shim adds on top of the DNS library.
func BenchmarkServeDNS(b *testing.B) {
	s, q := benchSetup(b)
	w := &packingWriter{}
	b.ReportAllocs()
	for b.Loop() {
		s.ServeDNS(w, q)
	}
}

// benchSetup returns a server for west's view with 3 headless endpoints
// and the query the benchmarks ask.
func benchSetup(b *testing.B) (*Server, *dns.Msg) {
	b.Helper()
	src := &source{}
	src.v.Store(testView(3))
	s, err := New(Config{Cluster: "west"}, src)
	if err != nil {
		b.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("echo.demo.svc.clusterset.local.", dns.TypeA)
	return s, q
}

// packingWriter packs the reply as a real server would.
type packingWriter struct{ fakeWriter }

func (w *packingWriter) WriteMsg(m *dns.Msg) error {
	_, err := m.Pack()
	return err
}

// BenchmarkHandlePacket measures the UDP path without sockets: a plain query
// whose answer is cached after the first round.
func BenchmarkHandlePacket(b *testing.B) {
	s, q := benchSetup(b)
	pkt, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	c := newAnswerCache()
	out := make([]byte, 0, ednsUDPSize)
	b.ReportAllocs()
	for b.Loop() {
		if ans, counter := s.handlePacket(c, nil, pkt, out); ans == nil {
			b.Fatal("no answer")
		} else {
			counter.Inc()
		}
	}
}
