package gateway

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/causeway-mesh/causeway/internal/lib/logbackoff"
)

// Defaults of the fairness limits (Config).
const (
	// DefaultMaxFlowsPerSource: a quarter of a peer connection's default
	// stream credit (tunnel.DefaultMaxIncomingStreams), so one client
	// address cannot use up the credit of a cluster pair.
	DefaultMaxFlowsPerSource = 4096
	// DefaultMaxPeerConns: one connection per gateway instance of the
	// peer cluster, twice over while connections are being replaced, for
	// up to 8 instances.
	DefaultMaxPeerConns = 16
	// DefaultMaxPeerStreams: two peer connections' worth of streams.
	DefaultMaxPeerStreams = 32768
	// DefaultMaxPeerHeaderBytes bounds half-read headers per peer cluster.
	DefaultMaxPeerHeaderBytes = 16 << 20
	// DefaultHalfClosedTimeout is how long a half-closed flow may be idle.
	DefaultHalfClosedTimeout = 60 * time.Second
)

// pendingStreamCost estimates, in bytes, what a stream whose header is
// still being read holds besides the header itself: the goroutine's
// stack, QUIC stream state and receive buffers (the probe measured about
// 6.8 KB per stream).
const pendingStreamCost = 8 << 10

// Limits whose refusals are counted (the "limit" label of
// causeway_gateway_limit_refusals_total).
const (
	limitSourceFlows  = "source_flows"      // egress: a client address at MaxFlowsPerSource
	limitStreamCredit = "stream_credit"     // egress: the peer connection's stream credit is used up
	limitPeerConns    = "peer_connections"  // ingress: a peer cluster at MaxPeerConns
	limitPeerStreams  = "peer_streams"      // ingress: a peer cluster at MaxPeerStreams
	limitPeerHeaders  = "peer_header_bytes" // ingress: half-read headers at MaxPeerHeaderBytes
)

var limitNames = []string{limitSourceFlows, limitStreamCredit, limitPeerConns, limitPeerStreams, limitPeerHeaders}

// sourceLimiter caps the concurrent egress flows per client address.
type sourceLimiter struct {
	max int

	mu   sync.Mutex // guards open
	open map[netip.Addr]int
}

// acquire counts a flow of a; false (nothing counted) when a is at max.
func (l *sourceLimiter) acquire(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[a] >= l.max {
		return false
	}
	if l.open == nil {
		l.open = map[netip.Addr]int{}
	}
	l.open[a]++
	return true
}

// release ends a flow counted by acquire.
func (l *sourceLimiter) release(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[a]--; l.open[a] <= 0 {
		delete(l.open, a)
	}
}

// sourceAddr is the client address of an accepted connection (IPv4 in
// IPv6 unmapped); the zero Addr if it is not TCP.
func sourceAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// peerCaps enforces the per-peer-cluster limits of ingress. Peers are
// keyed by trust domain (the authenticated identity); only member trust
// domains complete the handshake, so the map is bounded by the members.
type peerCaps struct {
	maxConns, maxStreams int
	maxHeaderBytes       int64
	headerCharge         int64 // per stream whose header is being read

	mu    sync.Mutex // guards peers
	peers map[string]*peerUsage
}

// peerUsage is what one peer cluster holds.
type peerUsage struct {
	conns, streams int
	headerBytes    int64
}

func newPeerCaps(cfg Config) *peerCaps {
	return &peerCaps{maxConns: cfg.MaxPeerConns, maxStreams: cfg.MaxPeerStreams,
		maxHeaderBytes: cfg.MaxPeerHeaderBytes, headerCharge: int64(cfg.MaxHeaderSize) + pendingStreamCost,
		peers: map[string]*peerUsage{}}
}

// usageLocked returns td's usage, created if needed; mu is held.
func (c *peerCaps) usageLocked(td string) *peerUsage {
	u, ok := c.peers[td]
	if !ok {
		u = &peerUsage{}
		c.peers[td] = u
	}
	return u
}

// dropIfIdleLocked forgets td when it holds nothing; mu is held.
func (c *peerCaps) dropIfIdleLocked(td string, u *peerUsage) {
	if u.conns <= 0 && u.streams <= 0 && u.headerBytes <= 0 {
		delete(c.peers, td)
	}
}

// addConn counts a connection of td; false when td is at maxConns.
func (c *peerCaps) addConn(td string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.usageLocked(td)
	if u.conns >= c.maxConns {
		c.dropIfIdleLocked(td, u)
		return false
	}
	u.conns++
	return true
}

// doneConn ends a connection counted by addConn.
func (c *peerCaps) doneConn(td string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.usageLocked(td)
	u.conns--
	c.dropIfIdleLocked(td, u)
}

// addStream counts a new stream of td with its header still to read. It
// returns the grant to end it with, or the limit that refuses it.
func (c *peerCaps) addStream(td string) (*streamGrant, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.usageLocked(td)
	switch {
	case u.streams >= c.maxStreams:
		return nil, limitPeerStreams
	case u.headerBytes+c.headerCharge > c.maxHeaderBytes:
		return nil, limitPeerHeaders
	}
	u.streams++
	u.headerBytes += c.headerCharge
	return &streamGrant{caps: c, td: td, header: true}, ""
}

// usage returns what td holds now (for tests and /explain).
func (c *peerCaps) usage(td string) peerUsage {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, ok := c.peers[td]; ok {
		return *u
	}
	return peerUsage{}
}

// streamGrant is one admitted ingress stream; it is used by the stream's
// goroutine only.
type streamGrant struct {
	caps   *peerCaps
	td     string
	header bool // the header charge is still held
	ended  bool
}

// headerDone releases the header charge (the header was read, or the
// stream refused); idempotent.
func (g *streamGrant) headerDone() {
	if !g.header {
		return
	}
	g.header = false
	c := g.caps
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.usageLocked(g.td)
	u.headerBytes -= c.headerCharge
	c.dropIfIdleLocked(g.td, u)
}

// done ends the stream; idempotent.
func (g *streamGrant) done() {
	g.headerDone()
	if g.ended {
		return
	}
	g.ended = true
	c := g.caps
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.usageLocked(g.td)
	u.streams--
	c.dropIfIdleLocked(g.td, u)
}

// limitLogs rate-limits the log lines of refusals, per limit.
type limitLogs struct {
	byLimit map[string]*logbackoff.Limiter // fixed keys (limitNames): read-only after newLimitLogs
}

func newLimitLogs() limitLogs {
	l := limitLogs{byLimit: map[string]*logbackoff.Limiter{}}
	for _, n := range limitNames {
		l.byLimit[n] = &logbackoff.Limiter{}
	}
	return l
}

// limitRefused counts a refusal by limit and logs it, rate-limited
// (first time, then at most once per doubling interval up to a minute).
// attrs say who was refused.
func (g *Gateway) limitRefused(limit string, attrs ...any) {
	g.metrics.limitRefusals.WithLabelValues(limit).Inc()
	ok, failures, suppressed := g.limitLogs.byLimit[limit].Failure(limit)
	if !ok {
		return
	}
	attrs = append(attrs, "limit", limit, "refusals", failures, "not_logged", suppressed)
	g.log.Warn("refused over a fairness limit", attrs...)
}
