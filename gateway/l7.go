package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
)

// AppProtocols served at L7: a port whose appProtocol is one of these is
// terminated by the egress gateway and routed per request.
const (
	AppProtocolHTTP = "http"
	AppProtocolH2C  = "kubernetes.io/h2c"
	AppProtocolGRPC = "grpc"
)

// IsL7 reports whether a port with appProtocol p is served at L7.
func IsL7(p string) bool {
	switch p {
	case AppProtocolHTTP, AppProtocolH2C, AppProtocolGRPC:
		return true
	}
	return false
}

// backendSpeaksH2C reports whether backends of a port with appProtocol p
// are spoken to in HTTP/2 without TLS (prior knowledge) rather than
// HTTP/1.1.
func backendSpeaksH2C(p string) bool { return p == AppProtocolH2C || p == AppProtocolGRPC }

// l7Server serves the HTTP/1.1 and h2c requests of one L7 egress listener:
// the accept loop hands it each admitted client connection.
type l7Server struct {
	srv   *http.Server
	conns *connQueue
	done  chan struct{}
}

// newL7Server starts serving t's requests; accepted connections go in
// with offer.
func (g *Gateway) newL7Server(ctx context.Context, t egressTarget) *l7Server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	s := &l7Server{conns: newConnQueue(), done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serveRequest(w, r, t) }),
		Protocols:         &protos,
		ReadHeaderTimeout: g.cfg.HeaderTimeout,
		IdleTimeout:       g.cfg.FlowIdleTimeout,
		MaxHeaderBytes:    g.cfg.L7.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(s.conns)
	}()
	return s
}

// offer hands c to the server; release runs once c is closed.
func (s *l7Server) offer(c net.Conn, release func()) {
	tc := &releasingConn{Conn: c, release: release}
	if !s.conns.push(tc) {
		_ = tc.Close()
	}
}

// close stops the server: open connections are closed at once (the
// gateway's shutdown grace runs before listeners close).
func (s *l7Server) close() {
	_ = s.srv.Close()
	<-s.done
}

// releasingConn runs release once, when the connection is closed.
type releasingConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *releasingConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// connQueue is a net.Listener whose connections are pushed by the egress
// accept loop (which applies the per-source and flow limits first).
type connQueue struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnQueue() *connQueue {
	return &connQueue{ch: make(chan net.Conn), closed: make(chan struct{})}
}

// push hands c to Accept; false once the queue is closed.
func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.closed:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return &net.TCPAddr{} }

// serveRequest routes one request: the candidate clusters are ordered
// for this request (locality tiers, then power of two choices), and the
// request goes to the first that takes it. A cluster that fails before
// the request reached a backend (no connection, a refused stream, a
// failed backend dial) moves the request to the next candidate, as an L4
// flow moves, when its body can be sent again (none, or a known length up
// to maxReplayBody); otherwise such a failure is answered 502.
func (g *Gateway) serveRequest(w http.ResponseWriter, r *http.Request, t egressTarget) {
	start := time.Now()
	v := g.src.View()
	service := serviceLabel(v, t.key)
	q, err := newL7Request(r)
	if err != nil {
		g.l7Error(w, r, service, labelOther, start, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	attempts := 0
	for _, cand := range g.selector().Candidates(v, g.cfg.Cluster, t.key, t.port) {
		if attempts == g.cfg.MaxAttempts {
			break
		}
		if cand.Skip != "" && !cand.LastResort() {
			continue
		}
		if attempts > 0 {
			g.metrics.l7.retries.WithLabelValues(service).Inc()
		}
		attempts++
		resp, err := g.roundTrip(r.Context(), t, cand.Cluster, q.attempt())
		if err == nil && resp.Header.Get(unsentHeader) != "" {
			resp.Header.Del(unsentHeader)
			if q.replayable {
				resp.Body.Close()
				err = notSent(&refusal{causewayv1.StreamCode_STREAM_CODE_DIAL_FAILED, "no backend of " + cand.Cluster + " answered"})
			}
		}
		if err != nil {
			g.attemptFailed(cand.Cluster, t, err)
			if errors.Is(err, errNotSent) && q.replayable && r.Context().Err() == nil {
				continue
			}
			g.l7Error(w, r, service, peerLabel(v, cand.Cluster), start, http.StatusBadGateway, "upstream failed")
			return
		}
		g.outliers.success(cand.Cluster)
		g.metrics.l7.observe(service, "-", peerLabel(v, cand.Cluster), resp.StatusCode, time.Since(start))
		g.copyResponse(w, resp)
		return
	}
	g.l7Error(w, r, service, labelOther, start, http.StatusServiceUnavailable, "no cluster can serve "+t.key.String())
}

// unsentHeader marks a response of the ingress side that says the request
// reached no backend (its dial failed): the egress side may send it to
// another cluster. It never reaches a client.
const unsentHeader = "Causeway-Unsent"

// maxReplayBody is the largest request body kept to send again.
const maxReplayBody = 64 << 10

// l7Request is a client's request and, when it can be sent more than
// once, its body.
type l7Request struct {
	out        *http.Request
	body       []byte
	replayable bool
}

// newL7Request prepares r for sending: a body of known length up to
// maxReplayBody is read now, so that it can be sent again.
func newL7Request(r *http.Request) (*l7Request, error) {
	q := &l7Request{out: outgoingRequest(r)}
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		q.replayable = true
	case r.ContentLength >= 0 && r.ContentLength <= maxReplayBody:
		body, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength))
		if err != nil {
			return nil, err
		}
		q.body, q.replayable = body, true
	}
	return q, nil
}

// attempt is the request to send on one attempt.
func (q *l7Request) attempt() *http.Request {
	if q.body == nil {
		return q.out
	}
	out := *q.out
	out.Body = io.NopCloser(bytes.NewReader(q.body))
	return &out
}

// l7Error answers a request the gateway could not carry.
func (g *Gateway) l7Error(w http.ResponseWriter, r *http.Request, service, cluster string, start time.Time, code int, msg string) {
	g.log.Debug("request failed", "service", service, "peer", cluster, "code", code, "err", msg, "path", r.URL.Path)
	http.Error(w, msg, code)
	g.metrics.l7.observe(service, "-", cluster, code, time.Since(start))
}

// roundTrip sends req to cluster: its own backends directly, a peer
// cluster's through its gateway. errNotSent wraps the errors after which
// no byte of the request left.
func (g *Gateway) roundTrip(ctx context.Context, t egressTarget, cluster string, req *http.Request) (*http.Response, error) {
	if cluster == g.cfg.Cluster {
		return g.localRoundTrip(ctx, t, req)
	}
	return g.tunnelRoundTrip(ctx, t, cluster, req)
}

// hopByHop are the headers of one connection (RFC 9110 §7.6.1), never
// forwarded.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// outgoingRequest is r as sent on: hop-by-hop headers removed (a "TE:
// trailers" stays, gRPC needs it), HTTP/1.1 framing.
func outgoingRequest(r *http.Request) *http.Request {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Close = false
	te := r.Header.Get("Te")
	for _, h := range r.Header.Values("Connection") {
		for _, name := range strings.Split(h, ",") {
			out.Header.Del(strings.TrimSpace(name))
		}
	}
	for _, h := range hopByHop {
		out.Header.Del(h)
	}
	if te == "trailers" {
		out.Header.Set("Te", "trailers")
	}
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	if out.URL.Scheme == "" {
		out.URL.Scheme = "http"
	}
	if out.URL.Host == "" {
		out.URL.Host = r.Host
	}
	return out
}

// copyResponse writes resp to w, flushing as the body arrives (streams
// and gRPC need it), then its trailers.
func (g *Gateway) copyResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			// The response broke after its head: abort the client's
			// response too (net/http's own way: the server recovers
			// ErrAbortHandler silently), so it cannot pass for a whole one.
			panic(http.ErrAbortHandler)
		}
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
}
