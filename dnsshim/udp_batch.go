package dnsshim

import (
	"errors"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpBatch is the most datagrams one batch read or write moves.
const udpBatch = 32

// maxUDPQuery is the largest UDP query read whole; a larger datagram is
// cut there and gets FORMERR (a question is at most ~270 bytes; EDNS0
// options add a few dozen).
const maxUDPQuery = 4096

// batchConn moves several datagrams per system call; *ipv4.PacketConn and
// *ipv6.PacketConn are both one (their Message types are the same).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

var (
	_ batchConn = (*ipv4.PacketConn)(nil)
	_ batchConn = (*ipv6.PacketConn)(nil)
)

// newBatchConn wraps a UDP socket, or returns nil for other packet conns.
func newBatchConn(pc net.PacketConn) batchConn {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return nil
	}
	if a, ok := uc.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() != nil {
		return ipv4.NewPacketConn(uc)
	}
	return ipv6.NewPacketConn(uc)
}

// batchReader answers batches of queries until the socket is closed.
func (s *Server) batchReader(bc batchConn, local net.Addr) {
	in := make([]ipv4.Message, udpBatch)
	out := make([]ipv4.Message, udpBatch)
	bufs := make([]byte, udpBatch*(maxUDPQuery+ednsUDPSize))
	answers := make([][]byte, udpBatch) // the answer buffers of out
	for i := range in {
		b := bufs[i*(maxUDPQuery+ednsUDPSize):]
		in[i].Buffers = [][]byte{b[:maxUDPQuery:maxUDPQuery]}
		answers[i] = b[maxUDPQuery : maxUDPQuery+ednsUDPSize : maxUDPQuery+ednsUDPSize]
		out[i].Buffers = [][]byte{answers[i]}
	}
	counters := make([]prometheus.Counter, udpBatch)
	c := newAnswerCache()
	var over int // queries over the rate limit, for the slip
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if s.readFailed(err, "read dns queries") {
				return
			}
			continue
		}
		start := time.Now()
		k := 0
		for _, m := range in[:n] {
			pkt := m.Buffers[0][:m.N]
			var b []byte
			var counter prometheus.Counter
			switch {
			case !s.limit.allow(m.Addr):
				b, counter = s.overLimit(&over, pkt, answers[k])
			case m.N == maxUDPQuery: // possibly cut: never guess, answer FORMERR
				b, counter = s.formErrPacket(pkt, answers[k])
			default:
				b, counter = s.handlePacket(c, local, pkt, answers[k])
			}
			if b == nil {
				continue
			}
			out[k].Buffers[0], out[k].Addr, counters[k] = b, m.Addr, counter
			k++
		}
		s.writeBatch(bc, out[:k])
		d := time.Since(start).Seconds()
		for i := range k {
			counters[i].Inc()
			s.metrics.udpDuration.Observe(d)
			out[i].Addr, counters[i] = nil, nil
		}
		for i := range in[:n] {
			in[i].Addr = nil
		}
	}
}

// writeBatch sends ms, skipping a datagram the kernel refuses.
func (s *Server) writeBatch(bc batchConn, ms []ipv4.Message) {
	for len(ms) > 0 {
		n, err := bc.WriteBatch(ms, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("write dns answer", "peer", ms[0].Addr, "err", err)
			n = max(n, 1) // drop the first unsent one and go on
		}
		ms = ms[n:]
	}
}
