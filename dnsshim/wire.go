package dnsshim

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

const dnsHeaderSize = 12

// wireQuery is what the UDP path reads from a plain query without
// unpacking it: enough to find a cached answer.
type wireQuery struct {
	// question is the question section as sent: name, type and class.
	question []byte
	qtype    uint16
	// edns reports an OPT record; udpSize is the answer's size limit and
	// do the DNSSEC OK bit.
	edns    bool
	do      bool
	udpSize uint16
}

// parseQuery reads a plain query: QR clear, opcode QUERY, one question of
// class IN with an uncompressed name of at most 255 bytes, no answer or
// authority records, at most one additional record which is an EDNS0 OPT of
// version 0 (without options other than cookies and padding, which the shim
// ignores), and nothing after it. Anything else returns false and takes the
// full path (unpacking with miekg/dns), which answers every case.
func parseQuery(pkt []byte) (q wireQuery, ok bool) {
	if len(pkt) < dnsHeaderSize || pkt[2]&0xf8 != 0 { // QR, opcode
		return q, false
	}
	be := binary.BigEndian
	if be.Uint16(pkt[4:]) != 1 || be.Uint16(pkt[6:]) != 0 || be.Uint16(pkt[8:]) != 0 {
		return q, false
	}
	ar := be.Uint16(pkt[10:])
	if ar > 1 {
		return q, false
	}
	off := dnsHeaderSize
	for {
		if off >= len(pkt) || off-dnsHeaderSize >= 255 {
			return q, false
		}
		l := int(pkt[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 { // compression pointer or reserved label type
			return q, false
		}
		off += 1 + l
	}
	if off-dnsHeaderSize > 255 || off+4 > len(pkt) || be.Uint16(pkt[off+2:]) != dns.ClassINET {
		return q, false
	}
	q.qtype = be.Uint16(pkt[off:])
	q.question = pkt[dnsHeaderSize : off+4]
	off += 4
	q.udpSize = dns.MinMsgSize
	if ar == 1 {
		// OPT: root owner, type, class = payload size, TTL = extended
		// rcode, version, flags; then RDLENGTH and options.
		if off+11 > len(pkt) || pkt[off] != 0 || be.Uint16(pkt[off+1:]) != dns.TypeOPT || pkt[off+6] != 0 {
			return q, false
		}
		q.edns = true
		q.udpSize = uint16(ednsLimit(be.Uint16(pkt[off+3:])))
		q.do = pkt[off+7]&0x80 != 0
		rdlen := int(be.Uint16(pkt[off+9:]))
		off += 11
		if off+rdlen != len(pkt) || !plainOptions(pkt[off:]) {
			return q, false
		}
		return q, true
	}
	return q, off == len(pkt)
}

// plainOptions reports whether opts is well-formed and holds only options
// that do not change the answer.
func plainOptions(opts []byte) bool {
	for len(opts) > 0 {
		if len(opts) < 4 {
			return false
		}
		code, n := binary.BigEndian.Uint16(opts), int(binary.BigEndian.Uint16(opts[2:]))
		if 4+n > len(opts) {
			return false
		}
		switch {
		case code == dns.EDNS0COOKIE && (n == 8 || n >= 16 && n <= 40):
		case code == dns.EDNS0PADDING:
		default:
			return false
		}
		opts = opts[4+n:]
	}
	return true
}
