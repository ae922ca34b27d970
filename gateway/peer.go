package gateway

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// peer is the connection to one peer cluster's gateway, dialed on demand
// and re-dialed when it dies.
type peer struct {
	cluster string

	mu      sync.Mutex // guards conn, dialing
	conn    *quic.Conn
	dialing chan struct{} // closed when the dial in progress ends
	dialErr error
}

func (p *peer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		_ = p.conn.CloseWithError(tunnel.ConnCodeNoError, "gateway shutting down")
	}
}

// conn returns a live connection to cluster's gateway, dialing if needed.
// Concurrent callers share one dial.
func (g *Gateway) conn(ctx context.Context, cluster string) (*quic.Conn, error) {
	g.peersMu.Lock()
	p := g.peers[cluster]
	if p == nil {
		p = &peer{cluster: cluster}
		g.peers[cluster] = p
	}
	g.peersMu.Unlock()

	for {
		p.mu.Lock()
		if p.conn != nil && p.conn.Context().Err() == nil {
			c := p.conn
			p.mu.Unlock()
			return c, nil
		}
		if p.dialing == nil {
			done := make(chan struct{})
			p.dialing = done
			p.mu.Unlock()
			c, err := g.dial(ctx, cluster)
			p.mu.Lock()
			p.conn, p.dialErr, p.dialing = c, err, nil
			close(done)
			p.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return c, nil
		}
		wait := p.dialing
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for connection to %s: %w", cluster, ctx.Err())
		case <-wait:
		}
		p.mu.Lock()
		c, err := p.conn, p.dialErr
		p.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if c != nil && c.Context().Err() == nil {
			return c, nil
		}
	}
}

// dial connects to the first reachable gateway instance of cluster,
// requiring that cluster's gateway identity.
func (g *Gateway) dial(ctx context.Context, cluster string) (*quic.Conn, error) {
	v := g.src.View()
	rec, ok := v.Cluster(cluster)
	if !ok {
		return nil, fmt.Errorf("dial %s: not a member cluster", cluster)
	}
	want, err := certs.NewID(rec.GetTrustDomain(), "gateway")
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", cluster, err)
	}
	clientTLS := certs.ClientConfig(certs.TLSOptions{
		Source:     g.tls,
		Bundles:    g.bundles,
		Authorize:  certs.AuthorizeID(want),
		NextProtos: []string{tunnel.ALPN},
	})
	var lastErr error = fmt.Errorf("dial %s: no live gateway", cluster)
	for _, gw := range v.Gateways(cluster) {
		for _, addr := range gw.GetAddresses() {
			udpAddr, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				lastErr = fmt.Errorf("dial %s gateway %s: %w", cluster, addr, err)
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, g.cfg.DialTimeout)
			conn, err := g.transport.Dial(dctx, udpAddr, clientTLS, g.cfg.Tunnel.QUIC())
			cancel()
			if err != nil {
				g.metrics.handshakes.WithLabelValues("client", "error").Inc()
				lastErr = fmt.Errorf("dial %s gateway %s: %w", cluster, addr, err)
				continue
			}
			g.metrics.handshakes.WithLabelValues("client", "ok").Inc()
			g.log.Info("connected to peer gateway", "peer", cluster, "addr", addr)
			return conn, nil
		}
	}
	return nil, lastErr
}
