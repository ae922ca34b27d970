package dnsshim

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// header is a query header with id, flags and section counts.
func header(id uint16, flags uint16, qd, an, ns, ar uint16) []byte {
	return []byte{byte(id >> 8), byte(id), byte(flags >> 8), byte(flags), 0, byte(qd), 0, byte(an), 0, byte(ns), 0, byte(ar)}
}

// TestMalformedPackets sends packets miekg/dns cannot build, over UDP and
// TCP: each gets FORMERR with its ID, and the server keeps answering.
func TestMalformedPackets(t *testing.T) {
	src := &source{}
	src.v.Store(testView(1))
	addr, _, _ := startServer(t, src)
	label63 := append([]byte{63}, bytes.Repeat([]byte{'a'}, 63)...)
	var huge []byte // 5 labels of 63 bytes: a 321-byte name
	for range 5 {
		huge = append(huge, label63...)
	}
	huge = append(huge, 0)
	typeAClassIN := []byte{0, 1, 0, 1}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name  string
		pkt   []byte
		rcode int
	}{
		{"header and garbage", cat(header(0xabcd, 0x0100, 1, 0, 0, 0), []byte{0xff, 0xff, 0xff}), 0},
		{"name longer than 255 bytes", cat(header(0xabce, 0x0100, 1, 0, 0, 0), huge, typeAClassIN), 0},
		{"label of 64 bytes", cat(header(0xabcf, 0x0100, 1, 0, 0, 0), []byte{64}, bytes.Repeat([]byte{'a'}, 64), []byte{0}, typeAClassIN), 0},
		{"compression loop", cat(header(0xabd0, 0x0100, 1, 0, 0, 0), []byte{0xc0, 12}, typeAClassIN), 0},
		// miekg/dns reads a question cut after its name as class 0.
		{"question without type and class", cat(header(0xabd1, 0x0100, 1, 0, 0, 0), []byte{3, 'f', 'o', 'o', 0}), dns.RcodeNotImplemented},
		{"more questions announced than sent", cat(header(0xabd2, 0x0100, 3, 0, 0, 0), []byte{3, 'f', 'o', 'o', 0}, typeAClassIN), 0},
		{"OPT option longer than its record", cat(header(0xabd3, 0x0100, 1, 0, 0, 1), []byte{3, 'f', 'o', 'o', 0}, typeAClassIN,
			[]byte{0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 8}), 0},
	}
	for _, transport := range []string{"udp", "tcp"} {
		for _, tc := range cases {
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				r := rawExchange(t, addr, transport, tc.pkt)
				require.Equal(t, uint16(tc.pkt[0])<<8|uint16(tc.pkt[1]), r.Id)
				require.True(t, r.Response)
				require.Equal(t, dns.RcodeToString[max(tc.rcode, dns.RcodeFormatError)], dns.RcodeToString[r.Rcode])
				require.Equal(t, dns.RcodeSuccess, query(t, addr, transport, "echo.demo.svc.clusterset.local.", dns.TypeA, false).Rcode)
			})
		}
	}

	// Datagrams that get no answer at all: shorter than a header, and
	// responses (answering them could loop two servers). The next query on
	// the same socket gets the next datagram, so it must be its answer.
	conn, err := net.Dial("udp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(3*time.Second)))
	ok := new(dns.Msg)
	ok.SetQuestion("echo.demo.svc.clusterset.local.", dns.TypeA)
	ok.Id = 0x1234
	okPkt, err := ok.Pack()
	require.NoError(t, err)
	response := append(header(0x9999, 0x8400, 0, 0, 0, 0), okPkt[12:]...)
	for _, pkt := range [][]byte{{1, 2, 3}, response, okPkt} {
		_, err = conn.Write(pkt)
		require.NoError(t, err)
	}
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	require.NoError(t, err)
	r := new(dns.Msg)
	require.NoError(t, r.Unpack(buf[:n]))
	require.Equal(t, uint16(0x1234), r.Id)
	require.Equal(t, dns.RcodeSuccess, r.Rcode)
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

// fuzzServer seeds f with queries worth mutating (every kind of name and
// some EDNS) and returns a server for west's view to feed them to.
func fuzzServer(f *testing.F) *Server {
	f.Helper()
	for _, tc := range conformanceCases() {
		if b, err := tc.query().Pack(); err == nil {
			f.Add(b)
		}
	}
	src := &source{}
	src.v.Store(testView(5))
	s, err := New(Config{Cluster: "west"}, src)
	require.NoError(f, err)
	return s
}

func FuzzServeDNS(f *testing.F) {
	s := fuzzServer(f)
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

// FuzzHandlePacket feeds raw datagrams to the UDP path. Every answer must
// unpack, fit the UDP limit and echo the ID; and an answer replayed from
// the cache must be byte for byte the answer the full path gives.
func FuzzHandlePacket(f *testing.F) {
	s := fuzzServer(f)
	local := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	cached := newAnswerCache()
	f.Fuzz(func(t *testing.T, pkt []byte) { checkPacket(t, s, cached, local, pkt) })
}

// checkPacket asserts the properties FuzzHandlePacket checks for pkt.
func checkPacket(t testing.TB, s *Server, cached *answerCache, local net.Addr, pkt []byte) {
	t.Helper()
	out := make([]byte, 0, ednsUDPSize)
	first, _ := s.handlePacket(cached, local, pkt, out)
	first = append([]byte(nil), first...)
	again, _ := s.handlePacket(cached, local, pkt, make([]byte, 0, ednsUDPSize))
	fresh, _ := s.handlePacket(newAnswerCache(), local, pkt, make([]byte, 0, ednsUDPSize))
	if fresh == nil {
		require.Empty(t, first, "first answer")
		require.Empty(t, again, "answer from the cache")
		return
	}
	require.Equal(t, fresh, first, "first answer")
	require.Equal(t, fresh, again, "answer from the cache")
	require.LessOrEqual(t, len(fresh), ednsUDPSize)
	r := new(dns.Msg)
	require.NoError(t, r.Unpack(fresh), "answer unpacks")
	require.True(t, r.Response)
	require.Equal(t, uint16(pkt[0])<<8|uint16(pkt[1]), r.Id)
	if q, ok := parseQuery(pkt); ok {
		// The plain-query reader agrees with miekg/dns.
		m := new(dns.Msg)
		require.NoError(t, m.Unpack(pkt), "parseQuery accepted what miekg/dns rejects")
		require.Len(t, m.Question, 1)
		require.True(t, strings.EqualFold(m.Question[0].Name, r.Question[0].Name))
		require.Equal(t, q.qtype, m.Question[0].Qtype)
		require.Equal(t, q.edns, m.IsEdns0() != nil)
	}
}
