package dnsshim

import (
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"sync"

	"github.com/miekg/dns"
)

// serveUDP answers UDP queries on pc until it is closed. A few readers share
// the socket, each reusing its buffers, so a query costs no goroutine and
// almost no allocation beyond the answer itself.
func (s *Server) serveUDP(pc net.PacketConn) {
	var wg sync.WaitGroup
	for range max(2, runtime.GOMAXPROCS(0)) {
		wg.Go(func() { s.udpReader(pc) })
	}
	wg.Wait()
}

func (s *Server) udpReader(pc net.PacketConn) {
	in := make([]byte, dns.MaxMsgSize)
	out := make([]byte, 0, ednsUDPSize)
	local := pc.LocalAddr()
	for {
		n, peer, err := pc.ReadFrom(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Debug("read dns query", "err", err)
			continue
		}
		if n < dnsHeaderSize {
			continue // not even a header: nothing to answer
		}
		r := new(dns.Msg)
		if err := r.Unpack(in[:n]); err != nil {
			s.writeUDP(pc, peer, formErr(in[:n]), dns.MinMsgSize, out)
			continue
		}
		m, size := s.reply(r, local, true)
		s.writeUDP(pc, peer, m, size, out)
	}
}

const dnsHeaderSize = 12

// writeUDP packs m into buf and sends it; an answer over size is trimmed
// with fit and packed again (rare: most answers fit at the first pack).
func (s *Server) writeUDP(pc net.PacketConn, peer net.Addr, m *dns.Msg, size int, buf []byte) {
	if m == nil {
		return
	}
	b, err := m.PackBuffer(buf[:cap(buf)])
	if err == nil && len(b) > size {
		fit(m, size)
		b, err = m.PackBuffer(buf[:cap(buf)])
	}
	if err != nil {
		s.log.Debug("pack dns answer", "err", err)
		return
	}
	if _, err := pc.WriteTo(b, peer); err != nil {
		s.log.Debug("write dns answer", "peer", peer.String(), "err", err)
	}
}

// formErr answers a packet that has a header but does not parse, echoing
// its ID and opcode; responses are never answered.
func formErr(pkt []byte) *dns.Msg {
	if pkt[2]&0x80 != 0 { // QR set: a response
		return nil
	}
	m := new(dns.Msg)
	m.Id = binary.BigEndian.Uint16(pkt[0:2])
	m.Opcode = int(pkt[2]>>3) & 0xF
	m.Response = true
	m.Rcode = dns.RcodeFormatError
	return m
}
