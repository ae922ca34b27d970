package dnsshim

import (
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/prometheus/client_golang/prometheus"
)

// maxCachedAnswers bounds an answerCache; when full it starts over, so
// queries for ever new names cost memory no more than this.
const maxCachedAnswers = 2048

// answerCache holds packed UDP answers of one catalog view, keyed by the
// question as sent (so case variants are separate entries) and the query's
// EDNS0 state. Answers are built by the full path on first use and replayed
// with the query's ID and RD/CD bits patched in. A new view empties it. It
// belongs to one reader goroutine: no locks.
type answerCache struct {
	view    *catalog.View
	entries map[string]*cachedAnswer
	key     []byte // scratch for lookups
}

type cachedAnswer struct {
	wire    []byte
	counter prometheus.Counter
}

func newAnswerCache() *answerCache {
	return &answerCache{entries: make(map[string]*cachedAnswer)}
}

// keyOf builds q's key in c.key.
func (c *answerCache) keyOf(q wireQuery) []byte {
	flags := byte(0)
	if q.edns {
		flags |= 1
	}
	if q.do {
		flags |= 2
	}
	c.key = append(append(c.key[:0], q.question...), flags, byte(q.udpSize>>8), byte(q.udpSize))
	return c.key
}

// use empties c when v is not the view it holds answers of.
func (c *answerCache) use(v *catalog.View) {
	if v != c.view {
		clear(c.entries)
		c.view = v
	}
}

// get returns the answer to q in view v, or nil.
func (c *answerCache) get(v *catalog.View, q wireQuery) *cachedAnswer {
	c.use(v)
	return c.entries[string(c.keyOf(q))]
}

// put stores a copy of wire as the answer to q in view v.
func (c *answerCache) put(v *catalog.View, q wireQuery, wire []byte, counter prometheus.Counter) {
	c.use(v)
	if len(c.entries) >= maxCachedAnswers {
		clear(c.entries)
	}
	c.entries[string(c.keyOf(q))] = &cachedAnswer{wire: append([]byte(nil), wire...), counter: counter}
}

// copyTo copies a into out (which has room for any UDP answer) as the
// answer to query pkt: with the query's ID, RD and CD bits.
func (a *cachedAnswer) copyTo(out, pkt []byte) []byte {
	b := append(out[:0], a.wire...)
	b[0], b[1] = pkt[0], pkt[1]
	b[2] = b[2]&^0x01 | pkt[2]&0x01 // RD
	b[3] = b[3]&^0x10 | pkt[3]&0x10 // CD
	return b
}
