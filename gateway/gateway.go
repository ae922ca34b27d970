package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// ViewSource is the catalog the gateway routes by.
type ViewSource interface {
	View() *catalog.View
	Changed() <-chan struct{}
}

// Gateway is one gateway instance.
type Gateway struct {
	cfg     Config
	src     ViewSource
	log     *slog.Logger
	metrics *metrics
	tls     certs.Source // read on every handshake: a certs.Rotator renews in place
	bundles *certs.BundleSet

	transport *quic.Transport

	peersMu sync.Mutex // guards peers
	peers   map[string]*peer

	flows flowTracker // every flow, egress and ingress

	drainingMu sync.RWMutex // guards draining
	draining   bool

	ready chan struct{} // closed after the first egress sync

	egressMu    sync.Mutex // guards egressAddrs
	egressAddrs map[string]bool
}

// New returns a gateway presenting cert (its SPIFFE gateway identity).
func New(cfg Config, src ViewSource, cert certs.Source) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	g := &Gateway{
		cfg:     cfg,
		src:     src,
		log:     cfg.Logger.With("component", "gateway", "cluster", cfg.Cluster),
		metrics: newMetrics(cfg.Registerer),
		bundles: certs.NewBundleSet(),
		peers:   map[string]*peer{},
		ready:   make(chan struct{}),
	}
	if _, err := cert.Certificate(); err != nil {
		return nil, fmt.Errorf("gateway certificate: %w", err)
	}
	g.tls = cert
	return g, nil
}

// Ready is closed once egress listeners match the catalog for the first time.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// Run serves ingress QUIC on udp and egress listeners on imported service
// addresses (opened with listen) until ctx ends; then it stops accepting,
// gives open flows ShutdownGrace to finish, and closes everything.
func (g *Gateway) Run(ctx context.Context, udp *net.UDPConn, listen ListenFunc) error {
	g.transport = &quic.Transport{Conn: udp}
	serverTLS := certs.ServerConfig(certs.TLSOptions{
		Source:     g.tls,
		Bundles:    g.bundles,
		Authorize:  certs.AuthorizeMember("gateway"),
		NextProtos: []string{tunnel.ALPN},
	})
	ln, err := g.transport.Listen(serverTLS, g.cfg.Tunnel.QUIC())
	if err != nil {
		return fmt.Errorf("listen for quic on %s: %w", udp.LocalAddr(), err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { g.acceptConns(runCtx, ln) })
	egressErr := make(chan error, 1)
	wg.Go(func() { egressErr <- g.runEgress(runCtx, listen) })

	select {
	case <-ctx.Done():
	case err = <-egressErr:
		cancel()
	}
	g.shutdown()
	_ = ln.Close()
	wg.Wait()
	return err
}

func (g *Gateway) shutdown() {
	g.drainingMu.Lock()
	g.draining = true
	g.drainingMu.Unlock()
	t := time.NewTimer(g.cfg.ShutdownGrace)
	defer t.Stop()
	select {
	case <-g.flows.idleCh():
	case <-t.C:
		g.log.Info("shutdown grace over; closing open flows")
	}
	g.flows.closeAll()
	g.peersMu.Lock()
	for _, p := range g.peers {
		p.close()
	}
	g.peersMu.Unlock()
	_ = g.transport.Close()
	<-g.flows.idleCh()
}

func (g *Gateway) isDraining() bool {
	g.drainingMu.RLock()
	defer g.drainingMu.RUnlock()
	return g.draining
}

// syncBundles makes the gateway trust exactly the bundles in v. A bundle
// is trusted only for the trust domain of the cluster whose key holds it.
func (g *Gateway) syncBundles(v *catalog.View) {
	seen := map[string]bool{}
	for key, e := range v.Entries() {
		b := e.GetBundle()
		cluster, ok := strings.CutPrefix(key, "bundles/")
		if b == nil || !ok {
			continue
		}
		td, auth, err := certs.CheckPublishedBundle(cluster, b)
		if err != nil {
			g.log.Warn("ignoring bad trust bundle", "peer", cluster, "err", err)
			continue
		}
		g.bundles.Set(td, auth)
		seen[td] = true
	}
	for _, td := range g.bundles.TrustDomains() {
		if !seen[td] {
			g.bundles.Delete(td)
		}
	}
}

// acceptConns accepts peer connections until the listener closes.
func (g *Gateway) acceptConns(ctx context.Context, ln *quic.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		id, err := certs.PeerID(conn.ConnectionState().TLS)
		if err != nil {
			g.metrics.handshakes.WithLabelValues("server", "error").Inc()
			_ = conn.CloseWithError(tunnel.ConnCodeNoError, "no peer identity")
			continue
		}
		g.metrics.handshakes.WithLabelValues("server", "ok").Inc()
		wg.Go(func() { g.serveConn(ctx, conn, id) })
	}
}

// serveConn accepts streams of one peer connection until it closes.
func (g *Gateway) serveConn(ctx context.Context, conn *quic.Conn, id certs.ID) {
	log := g.log.With("peer", id.String())
	log.Debug("peer connected", "addr", conn.RemoteAddr())
	for {
		stream, err := conn.AcceptStream(ctx)
		if err != nil {
			log.Debug("peer connection ended", "err", err)
			return
		}
		fid, ok := g.flows.add(closerFunc(func() error {
			stream.CancelRead(tunnel.CodeShutdown)
			stream.CancelWrite(tunnel.CodeShutdown)
			return nil
		}))
		if !ok {
			stream.CancelRead(tunnel.CodeShutdown)
			stream.CancelWrite(tunnel.CodeShutdown)
			continue
		}
		go func() {
			defer g.flows.done(fid)
			g.handleIngress(ctx, stream, id)
		}()
	}
}

// ListenFunc opens a TCP listener on addr; tests and dev use net.Listen.
type ListenFunc func(ctx context.Context, addr string) (net.Listener, error)

// DefaultListen listens with the standard library.
func DefaultListen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}

var errNoCandidate = errors.New("gateway: no cluster can serve the flow")
