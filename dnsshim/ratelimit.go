package dnsshim

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/causeway-mesh/causeway/internal/lib/ratelimit"
)

// RateLimit limits UDP answers per source (response-rate limiting), so a
// flood from one source cannot starve others and the shim cannot be used
// to reflect answers at a spoofed victim faster than the limit. TCP is not
// limited: it cannot be spoofed, and a limited UDP client is told to retry
// over it.
type RateLimit struct {
	// Disabled turns the limit off.
	Disabled bool
	// QPS is how many answers per second a source gets in the long run.
	// If zero, 1000 (a CoreDNS replica forwarding the zone is one source:
	// raise it for very busy clusters).
	QPS float64
	// Burst is how many answers a source may get at once. If zero, 2×QPS.
	Burst float64
	// IPv4PrefixLen and IPv6PrefixLen group sources: one bucket per
	// prefix. If zero, 32 (per address) and 64 (one host often holds a
	// /64).
	IPv4PrefixLen, IPv6PrefixLen int
	// MaxSources bounds the table of sources. If zero, 65536 (a few MB);
	// beyond it new sources share a bucket.
	MaxSources int
	// LimitLoopback limits loopback sources too. By default they are not
	// limited: a loopback source cannot be spoofed from the network (no
	// reflection), a local process can load the host in other ways anyway,
	// and `causeway dev` and the DNS benchmark query over loopback.
	LimitLoopback bool
	// Slip: every Slip-th query over the limit is answered with an empty
	// truncated (TC) answer, telling a legitimate client behind the source
	// to retry over TCP; the others are dropped. If zero, 2; 1 answers
	// every one.
	Slip int
}

func (r RateLimit) withDefaults() RateLimit {
	if r.QPS == 0 {
		r.QPS = 1000
	}
	if r.Burst == 0 {
		r.Burst = 2 * r.QPS
	}
	if r.IPv4PrefixLen == 0 {
		r.IPv4PrefixLen = 32
	}
	if r.IPv6PrefixLen == 0 {
		r.IPv6PrefixLen = 64
	}
	if r.Slip == 0 {
		r.Slip = 2
	}
	return r
}

func (r RateLimit) validate() error {
	switch {
	case r.QPS < 0 || r.Burst < 0 || r.MaxSources < 0 || r.Slip < 0:
		return fmt.Errorf("dnsshim config: rate limit %+v has a negative value", r)
	case r.IPv4PrefixLen < 0 || r.IPv4PrefixLen > 32:
		return fmt.Errorf("dnsshim config: rate limit IPv4 prefix length %d is not 1-32", r.IPv4PrefixLen)
	case r.IPv6PrefixLen < 0 || r.IPv6PrefixLen > 128:
		return fmt.Errorf("dnsshim config: rate limit IPv6 prefix length %d is not 1-128", r.IPv6PrefixLen)
	}
	return nil
}

// sourceLimiter is the RateLimit of a Server; nil when disabled.
type sourceLimiter struct {
	table    *ratelimit.Table[netip.Addr]
	v4, v6   int
	slip     int
	loopback bool // limit loopback sources too
}

func newSourceLimiter(r RateLimit) (*sourceLimiter, error) {
	if r.Disabled {
		return nil, nil
	}
	r = r.withDefaults()
	t, err := ratelimit.New[netip.Addr](ratelimit.Config{Rate: r.QPS, Burst: r.Burst, MaxKeys: r.MaxSources})
	if err != nil {
		return nil, fmt.Errorf("dnsshim config: %w", err)
	}
	return &sourceLimiter{table: t, v4: r.IPv4PrefixLen, v6: r.IPv6PrefixLen, slip: r.Slip, loopback: r.LimitLoopback}, nil
}

// allow takes one answer of from's bucket; addresses that are not UDP
// (test packet conns) are not limited.
func (l *sourceLimiter) allow(from net.Addr) bool {
	if l == nil {
		return true
	}
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return true
	}
	a, ok := netip.AddrFromSlice(ua.IP)
	if !ok {
		return true
	}
	a = a.Unmap()
	if a.IsLoopback() && !l.loopback {
		return true
	}
	bits := l.v6
	if a.Is4() {
		bits = l.v4
	}
	if p, err := a.Prefix(bits); err == nil {
		a = p.Addr()
	}
	return l.table.Allow(a)
}

// truncatedAnswer packs into out an empty answer to the plain query pkt
// with TC set (ID, RD and the question echoed; no records), the answer of
// a query over the rate limit and of one whose answer does not fit: it is
// no larger than the query, so it amplifies nothing. It returns nil for a
// packet that is not a plain query.
func truncatedAnswer(pkt, out []byte) []byte {
	q, ok := parseQuery(pkt)
	if !ok || dnsHeaderSize+len(q.question) > cap(out) {
		return nil
	}
	b := out[:dnsHeaderSize]
	copy(b[0:2], pkt[0:2])
	b[2] = 0x80 | 0x02 | pkt[2]&0x01 // QR, TC, RD copied (opcode QUERY)
	b[3] = 0
	binary.BigEndian.PutUint16(b[4:], 1)
	clear(b[6:12])
	return append(b, q.question...)
}
