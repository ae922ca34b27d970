package dnsshim

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/miekg/dns"
)

// ViewSource is the catalog the shim answers from.
type ViewSource interface {
	View() *catalog.View
}

// Server is an authoritative DNS server for the clusterset zone.
type Server struct {
	cfg     Config
	src     ViewSource
	log     *slog.Logger
	metrics *metrics
}

// New returns a server answering for cfg.Cluster from src.
func New(cfg Config, src ViewSource) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Server{cfg: cfg, src: src, log: cfg.Logger.With("component", "dnsshim", "cluster", cfg.Cluster),
		metrics: newMetrics(cfg.Registerer)}, nil
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
		servers = append(servers, &dns.Server{Listener: ln, Handler: s,
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

// ServeDNS answers one query (the TCP path, tests and fuzzing).
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	_, isTCP := w.RemoteAddr().(*net.TCPAddr)
	m, size := s.reply(r, w.LocalAddr(), !isTCP)
	fit(m, size)
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("write dns answer", "err", err)
	}
}

// reply builds the answer to r and counts it. size is the most the answer
// may take on the wire; callers trim it with fit only when it is larger, so
// the common small answer is packed exactly once.
func (s *Server) reply(r *dns.Msg, local net.Addr, udp bool) (m *dns.Msg, size int) {
	start := time.Now()
	m = s.answer(local, r)
	qtype := "other"
	if len(r.Question) == 1 {
		qtype = qtypeLabel(r.Question[0].Qtype)
	}
	size, transport := dns.MaxMsgSize, "tcp"
	m.Compress = true
	if udp {
		// The client's EDNS0 size, but never more than the size we
		// advertise: larger UDP replies risk fragmentation.
		size, transport = dns.MinMsgSize, "udp"
		if opt := r.IsEdns0(); opt != nil {
			size = max(dns.MinMsgSize, min(int(opt.UDPSize()), ednsUDPSize))
		}
	}
	s.metrics.queries.WithLabelValues(qtype, dns.RcodeToString[m.Rcode]).Inc()
	s.metrics.duration.WithLabelValues(transport).Observe(time.Since(start).Seconds())
	return m, size
}

// ednsUDPSize is the EDNS0 payload size the shim advertises and the most it
// sends over UDP (the DNS flag day 2020 value).
const ednsUDPSize = 1232

// fit makes m at most size bytes. Additional records are optional and go
// first, without TC (RFC 2181 section 9); then Truncate cuts answers and
// sets TC.
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
	m.Truncate(size)
}

func (s *Server) answer(local net.Addr, r *dns.Msg) *dns.Msg {
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
	m.Authoritative = true
	v := s.src.View() // one view for the whole answer
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
