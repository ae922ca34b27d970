package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// errNotSent wraps the failures of an attempt after which no byte of the
// request left the gateway, so another candidate may take the request.
var errNotSent = errors.New("request not sent")

func notSent(err error) error { return fmt.Errorf("%w: %w", errNotSent, err) }

// L7 streams: a stream whose header has app_protocol set carries an
// HTTP/1.1 connection between the two gateways, for one service port:
// the egress side keeps such streams in a pool per peer cluster (an
// http.Transport whose connections are streams) and sends request after
// request on each, as a keep-alive connection; the ingress side serves
// each stream as a connection of its L7 server, which sends every request
// to a local backend.

// l7StreamIdle is how long a pooled L7 stream may idle at the egress side;
// the ingress side allows longer (l7StreamIdle + 30 s), so the egress side
// closes first and never sends on a stream the other side is closing.
const l7StreamIdle = 60 * time.Second

// peerTransport is the pool of L7 streams to cluster's gateways.
func (g *Gateway) peerTransport(cluster string) *http.Transport {
	if t, ok := g.l7Peers.Load(cluster); ok {
		return t.(*http.Transport)
	}
	t := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return g.dialL7Stream(ctx, cluster, addr)
		},
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        l7StreamIdle,
		DisableCompression:     true,
		MaxResponseHeaderBytes: int64(g.cfg.L7.MaxHeaderBytes),
	}
	actual, _ := g.l7Peers.LoadOrStore(cluster, t)
	return actual.(*http.Transport)
}

// tunnelRoundTrip sends req to cluster's gateway over a pooled L7 stream
// for t's service port.
func (g *Gateway) tunnelRoundTrip(ctx context.Context, t egressTarget, cluster string, req *http.Request) (*http.Response, error) {
	load := g.l7LoadOf(cluster)
	load.active.Add(1)
	resp, err := g.peerTransport(cluster).RoundTrip(toBackend(ctx, req, t))
	if err != nil {
		load.active.Add(-1)
		return nil, err
	}
	var once sync.Once
	resp.Body = &endingBody{ReadCloser: resp.Body, end: func() { once.Do(func() { load.active.Add(-1) }) }}
	return resp, nil
}

// l7Load counts a peer cluster's L7 streams and the requests on them.
// A pooled stream is an open stream of the peer (it holds its instance),
// but balancing must see requests, not idle streams: the load of a
// cluster is its open streams minus its L7 streams plus its L7 requests.
type l7Load struct {
	streams, active atomic.Int64
}

func (g *Gateway) l7LoadOf(cluster string) *l7Load {
	if l, ok := g.l7Loads.Load(cluster); ok {
		return l.(*l7Load)
	}
	l, _ := g.l7Loads.LoadOrStore(cluster, &l7Load{})
	return l.(*l7Load)
}

// l7Adjust is what cluster's L7 traffic adds to its open streams for
// balancing (see l7Load).
func (g *Gateway) l7Adjust(cluster string) int {
	l, ok := g.l7Loads.Load(cluster)
	if !ok {
		return 0
	}
	return int(l.(*l7Load).active.Load() - l.(*l7Load).streams.Load())
}

// dialL7Stream opens an L7 stream to one of cluster's gateway instances
// for the service port addr names (backendHost). Failures are errNotSent:
// nothing of a request was written.
func (g *Gateway) dialL7Stream(ctx context.Context, cluster, addr string) (net.Conn, error) {
	key, port, err := parseBackendHost(addr)
	if err != nil {
		return nil, notSent(err)
	}
	t := egressTarget{key: key, port: port, appProtocol: l7Protocol(g.src.View(), g.cfg.Cluster, key, port)}
	in, conn, err := g.peers.pick(ctx, cluster, false)
	if err != nil {
		return nil, notSent(err)
	}
	stream, err := g.openStreamOn(ctx, in.abandoned(conn), conn, cluster, t, flowSource{})
	if err != nil {
		if refusalCode(err) == causewayv1.StreamCode_STREAM_CODE_DRAINING {
			in.markDraining(conn)
		}
		in.release(conn)
		return nil, notSent(err)
	}
	load := g.l7LoadOf(cluster)
	load.streams.Add(1)
	return newStreamConn(stream, conn.LocalAddr(), conn.RemoteAddr(), func() {
		load.streams.Add(-1)
		in.release(conn)
	}), nil
}

// l7Protocol is the appProtocol of port of key as cluster imports it
// ("http" when the import is gone: the request still goes as HTTP/1.1).
func l7Protocol(v *catalog.View, cluster string, key catalog.ServiceKey, port uint32) string {
	imp, _ := v.Import(cluster, key)
	return cmp.Or(portL7Protocol(imp.GetPorts(), port), AppProtocolHTTP)
}

// portL7Protocol is the L7 appProtocol of port among ports, or "" when it
// is served at L4 (or not there).
func portL7Protocol(ports []*causewayv1.ServicePort, port uint32) string {
	for _, p := range ports {
		if p.GetPort() == port && IsL7(p.GetAppProtocol()) {
			return p.GetAppProtocol()
		}
	}
	return ""
}

// streamConn is a QUIC stream as a net.Conn: an L7 stream seen by
// net/http. Close ends both directions and runs release once.
type streamConn struct {
	*quic.Stream
	local, remote net.Addr
	once          sync.Once
	release       func()
}

func newStreamConn(s *quic.Stream, local, remote net.Addr, release func()) *streamConn {
	return &streamConn{Stream: s, local: local, remote: remote, release: release}
}

func (c *streamConn) Close() error {
	c.once.Do(func() {
		_ = c.Stream.Close()
		c.Stream.CancelRead(tunnel.CodeFlowReset)
		c.release()
	})
	return nil
}

func (c *streamConn) LocalAddr() net.Addr  { return c.local }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

// l7Target is the service port an ingress L7 stream serves, in the
// context of its requests.
type l7Target struct {
	key         catalog.ServiceKey
	port        uint32
	appProtocol string
	// peerTD is the trust domain of the peer connection: the only one
	// its requests may claim identities in.
	peerTD string
	// serviceLabel and peerLabel label the stream's decisions.
	serviceLabel, peerLabel string
}

type l7TargetKey struct{}

// newL7Ingress is the server of the L7 streams peers open: each stream is
// one of its connections; each request goes to a local backend of the
// stream's service port.
func (g *Gateway) newL7Ingress(ctx context.Context) *l7Server {
	s := &l7Server{conns: newConnQueue(), done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(g.serveIngressRequest),
		ReadHeaderTimeout: g.cfg.HeaderTimeout,
		IdleTimeout:       l7StreamIdle + 30*time.Second,
		MaxHeaderBytes:    g.cfg.L7.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if rc, ok := c.(*releasingConn); ok {
				if t, ok := rc.Conn.(*targetConn); ok {
					return context.WithValue(ctx, l7TargetKey{}, t.target)
				}
			}
			return ctx
		},
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(s.conns)
	}()
	return s
}

// targetConn is an ingress L7 stream with the service port it serves.
type targetConn struct {
	*streamConn
	target l7Target
}

// handleIngressStream serves a stream that carries an HTTP connection: it
// admits it as a flow is admitted, answers OK and hands it to the L7
// server; it returns when the stream is closed.
func (g *Gateway) handleIngressStream(stream *quic.Stream, h *causewayv1.StreamHeader, x *causewayv1.ExportRecord, peerID certs.ID) string {
	_ = stream.SetWriteDeadline(time.Now().Add(g.cfg.HeaderTimeout))
	if err := tunnel.WriteFrame(stream, &causewayv1.StreamResponse{Code: causewayv1.StreamCode_STREAM_CODE_OK}); err != nil {
		stream.CancelRead(tunnel.CodeProtocolError)
		stream.CancelWrite(tunnel.CodeProtocolError)
		return resultError
	}
	_ = stream.SetWriteDeadline(time.Time{})
	key := catalog.ServiceKey{Namespace: h.GetNamespace(), Name: h.GetService()}
	v := g.src.View()
	t := l7Target{key: key, port: h.GetPort(), appProtocol: exportedProtocol(x, h.GetPort(), h.GetAppProtocol()),
		peerTD: peerID.TrustDomain, serviceLabel: serviceLabel(v, key), peerLabel: peerLabel(v, h.GetSourceCluster())}
	closed := make(chan struct{})
	var remote net.Addr = &net.TCPAddr{}
	if ap, err := netip.ParseAddrPort(h.GetSourceAddress()); err == nil {
		remote = net.TCPAddrFromAddrPort(ap) // the original client, for logs
	}
	g.l7In.offer(&targetConn{streamConn: newStreamConn(stream, &net.TCPAddr{}, remote, func() {}), target: t}, func() { close(closed) })
	<-closed
	return resultOK
}

// exportedProtocol is the appProtocol this cluster exports port with (the
// backend protocol is the exporter's to say), else the header's.
func exportedProtocol(x *causewayv1.ExportRecord, port uint32, claimed string) string {
	return cmp.Or(portL7Protocol(x.GetPorts(), port), claimed)
}

// serveIngressRequest sends one request of an L7 stream to a local
// backend and copies the response back. A request that reached no
// backend (every dial failed) is answered 502 with unsentHeader, so the
// egress side may send it to another cluster.
func (g *Gateway) serveIngressRequest(w http.ResponseWriter, r *http.Request) {
	t, ok := r.Context().Value(l7TargetKey{}).(l7Target)
	if !ok {
		http.Error(w, "not an L7 stream", http.StatusInternalServerError)
		return
	}
	// The path policies see is the path the backend gets: normalized here,
	// whatever the peer did.
	normalizePath(r.URL)
	if !g.authorizeRequest(w, r, t) {
		return
	}
	out := outgoingRequest(r)
	out.URL.Scheme, out.URL.Host = "http", backendHost(t.key, t.port)
	resp, err := g.backendTransport(t.appProtocol).RoundTrip(out)
	if err != nil {
		g.log.Debug("backend request failed", "service", t.key.String(), "err", err)
		if errors.Is(err, errNotSent) {
			w.Header().Set(unsentHeader, "1")
		}
		http.Error(w, "backend failed", http.StatusBadGateway)
		return
	}
	resp.Header.Del(unsentHeader) // only this gateway says so, never a backend
	g.copyResponse(w, resp)
}
