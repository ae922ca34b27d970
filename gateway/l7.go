package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/gateway/l7route"
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

// serveRequest serves one request of an L7 port: the route attached to
// the addressed service (if any) picks the target service, port and
// optionally cluster; the candidate clusters are ordered for this request
// (locality tiers, then power of two choices) and tried as the route's
// retry policy allows (tryCandidates).
func (g *Gateway) serveRequest(w http.ResponseWriter, r *http.Request, t egressTarget) {
	start := time.Now()
	v := g.src.View()
	service := serviceLabel(v, t.key)
	if max := g.cfg.L7.MaxBodyBytes; max > 0 {
		if r.ContentLength > max {
			g.l7Error(w, r, service, "-", labelOther, start, http.StatusRequestEntityTooLarge, "request body over the gateway's limit")
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
	}
	normalizePath(r.URL)
	sel, err := g.selectRoute(t, r)
	route := routeLabel(sel)
	switch {
	case errors.Is(err, l7route.ErrNoRoute):
		g.l7Error(w, r, service, route, labelOther, start, http.StatusNotFound, "no route of "+t.key.String()+" matches the request")
		return
	case err != nil:
		g.l7Error(w, r, service, route, labelOther, start, http.StatusInternalServerError, err.Error())
		return
	}
	q, err := newL7Request(r)
	if err != nil {
		g.l7Error(w, r, service, route, labelOther, start, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	sel.EditRequest(q.out.Header)
	// Only this gateway says who the client is: not the client, not a
	// route's header filter.
	q.out.Header.Del(SourceIdentityHeader)
	if id := g.requestIdentity(r.RemoteAddr); id != "" {
		q.out.Header.Set(SourceIdentityHeader, id)
	}
	ctx, cancel := withTimeout(r.Context(), sel.Timeouts().Request)
	defer cancel()
	dest := egressTarget{key: catalog.ServiceKey{Namespace: sel.Target.Service.Namespace, Name: sel.Target.Service.Name},
		port: uint32(sel.Target.Port), appProtocol: t.appProtocol}
	resp, cluster, code := g.tryCandidates(ctx, v, dest, &sel, q, service)
	if resp == nil {
		g.l7Error(w, r, service, route, peerLabel(v, cluster), start, code, http.StatusText(code))
		return
	}
	sel.EditResponse(resp.Header)
	g.metrics.l7.observe(service, route, peerLabel(v, cluster), resp.StatusCode, time.Since(start))
	g.copyResponse(w, resp)
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

// attempt is the request to send on one attempt, under ctx.
func (q *l7Request) attempt(ctx context.Context) *http.Request {
	out := q.out.WithContext(ctx)
	switch {
	case q.replayable && len(q.body) == 0:
		out.Body = http.NoBody
	case q.body != nil:
		out.Body = io.NopCloser(bytes.NewReader(q.body))
	}
	return out
}

// l7Error answers a request the gateway could not carry.
func (g *Gateway) l7Error(w http.ResponseWriter, r *http.Request, service, route, cluster string, start time.Time, code int, msg string) {
	g.log.Debug("request failed", "service", service, "route", route, "peer", cluster, "code", code, "err", msg, "path", r.URL.Path)
	http.Error(w, msg, code)
	g.metrics.l7.observe(service, route, cluster, code, time.Since(start))
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

// normalizePath removes dot segments and repeated slashes from u's path
// (RFC 3986 5.2.4), keeping a trailing slash, so that routes match the
// path the backend will serve: "/a/../admin" is "/admin" for both. A
// changed path is forwarded decoded (RawPath dropped).
func normalizePath(u *url.URL) {
	p := u.Path
	if p == "" || !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if !strings.HasPrefix(clean, "/") {
		clean = "/" + clean
	}
	if clean != p {
		u.Path, u.RawPath = clean, ""
	}
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
	declared := make(map[string]bool, len(resp.Trailer))
	for k := range resp.Trailer {
		h.Add("Trailer", k)
		declared[k] = true
	}
	// Trailers (declared, or possible on HTTP/2, as gRPC sends them
	// undeclared) need a body of open length: chunked on HTTP/1.1.
	mayTrail := len(resp.Trailer) > 0 || resp.ProtoMajor >= 2
	switch {
	case mayTrail:
		h.Del("Content-Length")
	case resp.ContentLength >= 0 && resp.Header.Get("Content-Length") == "":
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	flush := resp.ContentLength < 0 || mayTrail // pass each piece on at once
	if mayTrail {
		_ = rc.Flush() // the head now: net/http must not size a short body itself
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flush {
				_ = rc.Flush()
			}
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
		if declared[k] {
			h[k] = vv
		} else {
			h[http.TrailerPrefix+k] = vv
		}
	}
}

// endingBody runs end when closed.
type endingBody struct {
	io.ReadCloser
	end func()
}

func (b *endingBody) Close() error {
	err := b.ReadCloser.Close()
	b.end()
	return err
}

// copyBufs are the buffers of body copies.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
