package dnsshim

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/miekg/dns"
)

// ViewSource is the catalog the shim answers from. If it also has an
// IsReady() bool method (catalog.Client does), the shim answers SERVFAIL
// until it reports ready, so resolvers do not cache NXDOMAIN for names
// that only wait for the first snapshot.
type ViewSource interface {
	View() *catalog.View
}

// readiness is the optional side of a ViewSource.
type readiness interface{ IsReady() bool }

var _ readiness = (*catalog.Client)(nil)

// Server is an authoritative DNS server for the clusterset zone.
type Server struct {
	cfg     Config
	src     ViewSource
	log     *slog.Logger
	metrics *metrics
	limit   *sourceLimiter // nil: UDP answers are not limited
	ready   atomic.Bool    // latches once src reports ready
}

// New returns a server answering for cfg.Cluster from src.
func New(cfg Config, src ViewSource) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	limit, err := newSourceLimiter(cfg.RateLimit)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, src: src, log: cfg.Logger.With("component", "dnsshim"),
		metrics: newMetrics(cfg.Registerer), limit: limit}, nil
}

// Serve answers on pc (UDP) and ln (TCP), either of which may be nil, until
// ctx ends; then it shuts both down and returns nil.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	var servers []*dns.Server
	var udpDone chan struct{}
	if pc != nil {
		udpDone = make(chan struct{})
		go func() { defer close(udpDone); s.serveUDP(pc) }()
		defer func() { _ = pc.Close(); <-udpDone }()
	}
	if ln != nil {
		servers = append(servers, &dns.Server{Listener: ln, Handler: s, MsgAcceptFunc: acceptQuery,
			ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }})
	}
	errc := make(chan error, len(servers))
	var started sync.WaitGroup
	for _, srv := range servers {
		started.Add(1)
		srv.NotifyStartedFunc = started.Done
		go func() { errc <- srv.ActivateAndServe() }()
	}
	if len(servers) == 0 {
		<-ctx.Done()
		return nil
	}
	startedCh := make(chan struct{})
	go func() { started.Wait(); close(startedCh) }()
	select {
	case <-startedCh:
	case err := <-errc:
		return fmt.Errorf("serve dns: %w", err)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("serve dns: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.ShutdownContext(sctx)
	}
	return err
}

// acceptQuery hands every message but responses to ServeDNS, which
// answers other opcodes and question counts itself (as over UDP) and counts
// them.
func acceptQuery(dh dns.Header) dns.MsgAcceptAction {
	if dh.Bits&(1<<15) != 0 { // QR: a response, never answered
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// ServeDNS answers one query (the TCP path, tests and fuzzing).
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	start := time.Now()
	_, isTCP := w.RemoteAddr().(*net.TCPAddr)
	m, size, _ := s.reply(s.view(), r, w.LocalAddr(), !isTCP)
	fit(m, size)
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("write dns answer", "err", err)
	}
	s.metrics.count(r, m.Rcode).Inc()
	duration := s.metrics.udpDuration
	if isTCP {
		duration = s.metrics.tcpDuration
	}
	duration.Observe(time.Since(start).Seconds())
}

// view returns the view to answer from, or nil while the source is not
// ready (SERVFAIL).
func (s *Server) view() *catalog.View {
	if !s.ready.Load() {
		if r, ok := s.src.(readiness); ok && !r.IsReady() {
			return nil
		}
		s.ready.Store(true)
	}
	return s.src.View()
}

// reply builds the answer to r from v (nil: not ready). size is the most
// the answer may take on the wire; callers trim it with fit only when it is
// larger, so the common small answer is packed exactly once. cacheable
// reports whether the answer depends only on v, the local address and the
// query (so the UDP path may replay it for the same question).
func (s *Server) reply(v *catalog.View, r *dns.Msg, local net.Addr, udp bool) (m *dns.Msg, size int, cacheable bool) {
	m = s.answer(v, local, r) // compressed
	size = dns.MaxMsgSize
	if udp {
		// The client's EDNS0 size, but never more than the size we
		// advertise: larger UDP replies risk fragmentation.
		size = udpLimit(r.IsEdns0())
	}
	return m, size, v != nil
}

// udpLimit is the most an answer over UDP may take: 512 bytes, or the
// query's EDNS0 size clamped by ednsLimit.
func udpLimit(opt *dns.OPT) int {
	if opt == nil {
		return dns.MinMsgSize
	}
	return ednsLimit(opt.UDPSize())
}

// ednsLimit is the answer size allowed by an EDNS0 payload size: at least
// 512 bytes, at most the size the shim advertises.
func ednsLimit(payload uint16) int {
	return max(dns.MinMsgSize, min(int(payload), ednsUDPSize))
}

// ednsUDPSize is the EDNS0 payload size the shim advertises and the most it
// sends over UDP (the DNS flag day 2020 value).
const ednsUDPSize = 1232

// fit makes m at most size bytes. Additional records are optional and go
// first, without TC (RFC 2181 section 9); an answer that still does not
// fit is sent empty with TC set (the client retries over TCP), never cut
// to a partial answer: a truncated UDP answer is then no larger than the
// query, so a large headless answer cannot be used to amplify.
func fit(m *dns.Msg, size int) {
	m.Compress = true
	if m.Len() <= size {
		return
	}
	var extra []dns.RR
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	m.Extra = extra
	if m.Len() <= size {
		return
	}
	m.Answer, m.Ns = nil, nil
	m.Truncated = true
}

func (s *Server) answer(v *catalog.View, local net.Addr, r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Compress = true
	var opt *dns.OPT
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil { // several OPTs: RFC 6891 section 6.1.1
				m.Rcode = dns.RcodeFormatError
				return m
			}
			opt = o
		}
	}
	if opt != nil {
		m.SetEdns0(ednsUDPSize, opt.Do()) // DO is copied (RFC 3225 section 3)
	}
	switch {
	case r.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
		return m
	case len(r.Question) != 1:
		m.Rcode = dns.RcodeFormatError
		return m
	case opt != nil && opt.Version() != 0:
		m.Rcode = dns.RcodeBadVers
		return m
	}
	q := r.Question[0]
	if q.Qclass != dns.ClassINET {
		m.Rcode = dns.RcodeNotImplemented
		return m
	}
	if !dns.IsSubDomain(s.cfg.Zone, dns.CanonicalName(q.Name)) {
		m.Rcode = dns.RcodeRefused
		return m
	}
	if v == nil { // the catalog has not arrived yet
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	m.Authoritative = true
	res := s.resolve(v, q, local)
	switch {
	case res.nxdomain:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.soa(v)}
	case len(res.answer) == 0:
		m.Ns = []dns.RR{s.soa(v)}
	default:
		m.Answer, m.Extra = res.answer, append(res.extra, m.Extra...)
	}
	return m
}
