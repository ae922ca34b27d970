package dnsshim

import (
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkServeDNS measures the handler alone (no sockets): the per-query
// work the shim adds on top of the DNS library.
func BenchmarkServeDNS(b *testing.B) {
	src := &source{}
	src.v.Store(testView(3))
	s, err := New(Config{Cluster: "west"}, src)
	if err != nil {
		b.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("echo.demo.svc.clusterset.local.", dns.TypeA)
	w := &packingWriter{}
	b.ReportAllocs()
	for b.Loop() {
		s.ServeDNS(w, q)
	}
}

// packingWriter packs the reply as a real server would.
type packingWriter struct{ fakeWriter }

func (w *packingWriter) WriteMsg(m *dns.Msg) error {
	_, err := m.Pack()
	return err
}
