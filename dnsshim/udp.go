package dnsshim

import (
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// serveUDP answers UDP queries on pc until it is closed. A few readers share
// the socket (GOMAXPROCS, at least 2, so one reads while another writes),
// each with its own buffers and answer cache, so a query costs no goroutine,
// no lock and, once its answer is cached, almost no allocation. On a
// *net.UDPConn readers move datagrams in batches (recvmmsg/sendmmsg on
// Linux): under load one system call carries many queries or answers.
func (s *Server) serveUDP(pc net.PacketConn) {
	var wg sync.WaitGroup
	bc := newBatchConn(pc)
	for range max(2, runtime.GOMAXPROCS(0)) {
		if bc != nil {
			wg.Go(func() { s.batchReader(bc, pc.LocalAddr()) })
		} else {
			wg.Go(func() { s.udpReader(pc) })
		}
	}
	wg.Wait()
}

// udpReader answers queries on pc one datagram at a time, for packet
// conns that are not UDP sockets.
func (s *Server) udpReader(pc net.PacketConn) {
	in := make([]byte, dns.MaxMsgSize)
	out := make([]byte, 0, ednsUDPSize)
	local := pc.LocalAddr()
	c := newAnswerCache()
	var over int // queries over the rate limit, for the slip
	for {
		n, from, err := pc.ReadFrom(in)
		if err != nil {
			if s.readFailed(err, "read dns query") {
				return
			}
			continue
		}
		start := time.Now()
		var (
			b       []byte
			counter prometheus.Counter
		)
		if s.limit.allow(from) {
			b, counter = s.handlePacket(c, local, in[:n], out)
		} else {
			b, counter = s.overLimit(&over, in[:n], out)
		}
		if b == nil {
			continue
		}
		if _, err := pc.WriteTo(b, from); err != nil {
			s.log.Debug("write dns answer", "peer", from.String(), "err", err)
		}
		counter.Inc()
		s.metrics.udpDuration.Observe(time.Since(start).Seconds())
	}
}

// readFailed handles a read error of a UDP reader: it reports whether the
// socket is closed (the reader stops); other errors are logged, timeouts
// silently, and the reader reads on.
func (s *Server) readFailed(err error, msg string) (closed bool) {
	if errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		s.log.Debug(msg, "err", err)
	}
	return false
}

// handlePacket answers one UDP query packet: from c when it holds the
// answer, else by the full path (whose answer it then caches). It returns
// the answer's bytes (in out or in c; valid until the next call) and the
// counter to count it with, or nil when the packet gets no answer.
func (s *Server) handlePacket(c *answerCache, local net.Addr, pkt, out []byte) ([]byte, prometheus.Counter) {
	if len(pkt) < dnsHeaderSize || pkt[2]&0x80 != 0 {
		return nil, nil // not even a header, or a response: never answered
	}
	v := s.view()
	q, plain := parseQuery(pkt)
	if plain {
		if ans := c.get(v, q); ans != nil {
			return ans.copyTo(out, pkt), ans.counter
		}
	}
	r := new(dns.Msg)
	if err := r.Unpack(pkt); err != nil {
		return s.formErrPacket(pkt, out)
	}
	m, size, cacheable := s.reply(v, r, local, true)
	b, err := m.PackBuffer(out[:cap(out)])
	if err == nil && len(b) > size {
		fit(m, size)
		b, err = m.PackBuffer(out[:cap(out)])
	}
	if err != nil {
		s.log.Debug("pack dns answer", "err", err)
		return nil, nil
	}
	counter := s.metrics.count(r, m.Rcode)
	if plain && cacheable {
		c.put(v, q, b, counter)
	}
	return b, counter
}

// overLimit answers a query over its source's rate limit: every Slip-th
// with an empty truncated answer (into out), the others not at all (nil).
func (s *Server) overLimit(over *int, pkt, out []byte) ([]byte, prometheus.Counter) {
	*over++
	if *over%s.limit.slip == 0 {
		if b := truncatedAnswer(pkt, out); b != nil {
			return b, s.metrics.limitedTruncated
		}
	}
	s.metrics.limitedDropped.Inc()
	return nil, nil
}

// formErrPacket packs the FORMERR answer to pkt into out and returns it
// with its counter, or nil when pkt gets no answer (shorter than a header,
// or a response).
func (s *Server) formErrPacket(pkt, out []byte) ([]byte, prometheus.Counter) {
	if len(pkt) < dnsHeaderSize {
		return nil, nil
	}
	m := formErr(pkt)
	if m == nil {
		return nil, nil
	}
	b, err := m.PackBuffer(out[:cap(out)])
	if err != nil {
		return nil, nil
	}
	return b, s.metrics.counter(0, dns.RcodeFormatError)
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
