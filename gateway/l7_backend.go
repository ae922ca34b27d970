package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/internal/lib/names"
)

// backendTransports speak to this cluster's backends of L7 ports: HTTP/1.1
// or h2c (prior knowledge), with pooled connections per service port. A
// connection is dialed to a ready endpoint as L4 flows are (dialLocal).
type backendTransports struct {
	h1, h2c *http.Transport
}

func (g *Gateway) newBackendTransports() backendTransports {
	base := func() *http.Transport {
		return &http.Transport{
			DialContext:            g.dialBackend,
			MaxIdleConnsPerHost:    256,
			IdleConnTimeout:        90 * time.Second,
			DisableCompression:     true,
			MaxResponseHeaderBytes: int64(g.cfg.L7.MaxHeaderBytes),
		}
	}
	h1, h2c := base(), base()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2c.Protocols = &p
	return backendTransports{h1: h1, h2c: h2c}
}

// backendTransport is the transport of a port with appProtocol p.
func (g *Gateway) backendTransport(p string) http.RoundTripper {
	if backendSpeaksH2C(p) {
		return g.backends.h2c
	}
	return g.backends.h1
}

// localRoundTrip sends req to one of this cluster's backends of t.
func (g *Gateway) localRoundTrip(ctx context.Context, t egressTarget, req *http.Request) (*http.Response, error) {
	out := toBackend(ctx, req, t)
	if _, ok := out.Header[SourceIdentityHeader]; ok { // for peers only: backends never see it
		out.Header = out.Header.Clone()
		out.Header.Del(SourceIdentityHeader)
	}
	load := g.l7LoadOf(g.cfg.Cluster)
	load.active.Add(1)
	resp, err := g.backendTransport(t.appProtocol).RoundTrip(out)
	if err != nil {
		load.active.Add(-1)
		return nil, err
	}
	var once sync.Once
	resp.Body = &endingBody{ReadCloser: resp.Body, end: func() { once.Do(func() { load.active.Add(-1) }) }}
	return resp, nil
}

// toBackend is req addressed to t's service port (backendHost), under
// ctx: a shallow copy (req's header is not modified by transports).
func toBackend(ctx context.Context, req *http.Request, t egressTarget) *http.Request {
	out := req.WithContext(ctx)
	u := *req.URL
	u.Scheme, u.Host = "http", backendHost(t.key, t.port)
	out.URL = &u
	if out.Body != nil && out.Body != http.NoBody {
		// The transport closes the body it is given, also on a failed
		// dial; the client's body must stay open for the next candidate.
		out.Body = io.NopCloser(out.Body)
	}
	return out
}

// backendHost names a service port as the host of a backend request: the
// transports pool connections by it, and dialBackend reads it back.
func backendHost(key catalog.ServiceKey, port uint32) string {
	return net.JoinHostPort(key.Name+"."+key.Namespace, strconv.Itoa(int(port)))
}

// parseBackendHost is the inverse of backendHost.
func parseBackendHost(addr string) (catalog.ServiceKey, uint32, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return catalog.ServiceKey{}, 0, err
	}
	name, ns, ok := strings.Cut(host, ".")
	port, perr := strconv.ParseUint(p, 10, 16)
	if !ok || !names.IsDNSLabel(name) || !names.IsDNSLabel(ns) || perr != nil {
		return catalog.ServiceKey{}, 0, fmt.Errorf("not a backend host: %q", addr)
	}
	return catalog.ServiceKey{Namespace: ns, Name: name}, uint32(port), nil
}

// dialBackend dials a ready local endpoint of the service port addr names
// (backendHost); failures say that nothing was sent.
func (g *Gateway) dialBackend(ctx context.Context, _, addr string) (net.Conn, error) {
	key, port, err := parseBackendHost(addr)
	if err != nil {
		return nil, notSent(err)
	}
	x, ok := g.src.View().Export(key, g.cfg.Cluster)
	if !ok {
		return nil, notSent(&refusal{causewayv1.StreamCode_STREAM_CODE_NOT_EXPORTED, key.String() + " is not exported by " + g.cfg.Cluster})
	}
	c, err := g.dialLocal(ctx, x, port)
	if err != nil {
		return nil, notSent(err)
	}
	return c, nil
}
