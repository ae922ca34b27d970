package gateway

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/l7route"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/causeway-mesh/causeway/internal/lib/logbackoff"
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

	peers *peerSet // active peer clusters and their instances (peerset.go)

	outliers  *outlierDetector // ejects failing peer clusters (outlier.go)
	localOpen atomic.Int64     // egress flows open to this cluster's own backends

	flows     flowTracker       // every flow, egress and ingress
	conns     connSet           // live peer connections, accepted and dialed
	endpoints endpointPicker    // ingress balancing over local endpoints
	backends  backendTransports // L7 requests to local backends (l7_backend.go)
	routes    *l7route.Table    // L7 routes, when Config.Routes is set (l7_routes.go)
	budgets   sync.Map          // catalog.ServiceKey → *l7route.Budget: retry budgets
	l7Peers   sync.Map          // peer cluster → *http.Transport: pooled L7 streams (l7_tunnel.go)
	l7Loads   sync.Map          // peer cluster → *l7Load: its L7 streams and requests
	l7In      *l7Server         // serves the L7 streams peers open
	dialLogs  dialLogs          // rate limits logs of failed backend dials (dialerr.go)

	sources   sourceLimiter      // egress flows per client address (limits.go)
	peerCaps  *peerCaps          // ingress connections, streams and header memory per peer cluster
	limitLogs limitLogs          // rate limits logs of limit refusals
	claimLogs logbackoff.Limiter // rate limits logs of refused source identities (authorize.go)

	drainingMu sync.RWMutex // guards draining
	draining   bool

	ready chan struct{} // closed after the first egress sync
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
		log:     cfg.Logger.With("component", "gateway"),
		metrics: newMetrics(cfg.Registerer),
		bundles: certs.NewBundleSet(),
		ready:   make(chan struct{}),

		sources:   sourceLimiter{max: cfg.MaxFlowsPerSource},
		peerCaps:  newPeerCaps(cfg),
		limitLogs: newLimitLogs(),
	}
	g.outliers = g.newOutliers()
	g.backends = g.newBackendTransports()
	if cfg.Routes != nil {
		g.routes = l7route.NewTable(globalRand{})
	}
	g.peers = newPeerSet(cfg.Cluster, g.log, src.View)
	g.peers.timing = peerTiming{keepAlive: cfg.Tunnel.KeepAlivePeriod, backoff: cfg.ReconnectBackoff,
		backoffMax: cfg.ReconnectBackoffMax, replaceGrace: cfg.ReplaceGrace}
	g.peers.dial, g.peers.track, g.peers.forget = g.dialInstance, g.conns.track, g.forgetPeerClusters
	if _, err := cert.Certificate(); err != nil {
		return nil, fmt.Errorf("gateway certificate: %w", err)
	}
	g.tls = cert
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(newRTTCollector(g.conns.rtts))
	}
	return g, nil
}

// Ready is closed once the egress listeners were first opened for the
// catalog. A listener whose address cannot be bound does not hold it back:
// it is retried in the background and shown by the egress_listeners metric.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// Run serves ingress QUIC on udp and egress listeners on imported service
// addresses (opened with listen) until ctx ends. Then it drains: egress
// listeners close at once, peer connections stay up and every new stream
// is answered DRAINING (so peers move new flows elsewhere), open flows get
// ShutdownGrace to finish; then flows are reset and connections closed
// with ConnCodeNoError.
func (g *Gateway) Run(ctx context.Context, udp *net.UDPConn, listen ListenFunc) error {
	g.transport = &quic.Transport{Conn: udp, ConnContext: g.trackHandshake}
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
	// Peer connections outlive ctx until the grace is over, so streams
	// that arrive while draining get an answer (DRAINING).
	connCtx, stopConns := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConns()
	egressCtx, stopEgress := context.WithCancel(ctx)
	defer stopEgress()
	var wg sync.WaitGroup
	g.l7In = g.newL7Ingress(connCtx)
	defer g.l7In.close()
	wg.Go(func() { g.acceptConns(connCtx, ln) })
	wg.Go(func() { g.forgetStale(egressCtx) })
	wg.Go(func() { g.reverifyEvery(egressCtx) })
	wg.Go(func() { g.runRoutes(egressCtx) })
	egressErr := make(chan error, 1)
	wg.Go(func() { egressErr <- g.runEgress(egressCtx, listen) })

	select {
	case <-ctx.Done():
	case err = <-egressErr:
	}
	stopEgress()
	g.shutdown(stopConns)
	_ = ln.Close()
	wg.Wait()
	return err
}

// shutdown drains the gateway: new streams are answered DRAINING while
// open flows get ShutdownGrace; then it resets the flows left, cancels
// the connections' context (stopConns) and closes every connection.
func (g *Gateway) shutdown(stopConns context.CancelFunc) {
	g.drainingMu.Lock()
	g.draining = true
	g.drainingMu.Unlock()
	// Idle L7 streams both ways end now; busy ones after their request.
	g.l7In.srv.SetKeepAlivesEnabled(false)
	g.l7Peers.Range(func(_, t any) bool {
		t.(*http.Transport).CloseIdleConnections()
		return true
	})
	g.log.Info("draining", "grace", g.cfg.ShutdownGrace)
	t := time.NewTimer(g.cfg.ShutdownGrace)
	defer t.Stop()
	select {
	case <-g.flows.idleCh():
	case <-t.C:
		g.log.Info("shutdown grace over; closing open flows")
	}
	g.flows.closeAll()
	stopConns()
	g.peers.closeAll()
	g.conns.closeAll("gateway shutting down")
	_ = g.transport.Close()
	<-g.flows.idleCh()
}

// forgetStale drops metric series and balancer state of services and
// clusters that left the catalog, until ctx ends.
func (g *Gateway) forgetStale(ctx context.Context) {
	for {
		changed := g.src.Changed()
		v := g.src.View()
		g.metrics.streams.forget(v)
		g.metrics.decisions.forget(v)
		local := func(k catalog.ServiceKey) bool { _, ok := v.Export(k, g.cfg.Cluster); return ok }
		g.endpoints.forget(local)
		g.dialLogs.forget(local)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func (g *Gateway) isDraining() bool {
	g.drainingMu.RLock()
	defer g.drainingMu.RUnlock()
	return g.draining
}

// syncBundles makes the gateway trust exactly the bundles in v. A bundle
// is trusted only for the trust domain of the cluster whose key holds it.
// It reports whether the trust changed.
func (g *Gateway) syncBundles(v *catalog.View) (changed bool) {
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
		if have, ok := g.bundles.Bundle(td); !ok || !slices.EqualFunc(have, auth, (*x509.Certificate).Equal) {
			g.bundles.Set(td, auth)
			changed = true
		}
		seen[td] = true
	}
	for _, td := range g.bundles.TrustDomains() {
		if !seen[td] {
			g.bundles.Delete(td)
			changed = true
		}
	}
	return changed
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
		handshakeAccepted(conn)
		id, err := certs.PeerID(conn.ConnectionState().TLS)
		if err != nil {
			g.metrics.handshakes.WithLabelValues("server", "error").Inc()
			_ = conn.CloseWithError(tunnel.ConnCodeNoError, "no peer identity")
			continue
		}
		g.metrics.handshakes.WithLabelValues("server", "ok").Inc()
		peer := clusterOf(g.src.View(), id)
		if !g.peerCaps.addConn(id.TrustDomain) {
			g.limitRefused(limitPeerConns, "peer", id.String(), "addr", conn.RemoteAddr().String())
			_ = conn.CloseWithError(tunnel.ConnCodeOverloaded, "too many connections from this peer cluster")
			continue
		}
		td := id.TrustDomain
		context.AfterFunc(conn.Context(), func() { g.peerCaps.doneConn(td) })
		g.conns.trackAccepted(peer, conn)
		wg.Go(func() { g.serveConn(ctx, conn, peer, id) })
	}
}

// serveConn accepts streams of one connection from cluster peer's gateway
// (identity id) until it closes or ctx ends.
func (g *Gateway) serveConn(ctx context.Context, conn *quic.Conn, peer string, id certs.ID) {
	log := g.log.With("peer", id.String())
	log.Debug("peer connected", "addr", conn.RemoteAddr())
	for {
		stream, err := conn.AcceptStream(ctx)
		if err != nil {
			log.Debug("peer connection ended", "err", err)
			return
		}
		// Over a per-peer cap the stream is reset at once: no goroutine,
		// no header buffer, and nothing waits on a peer that reads nothing.
		grant, limit := g.peerCaps.addStream(id.TrustDomain)
		if limit != "" {
			g.limitRefused(limit, "peer", id.String())
			stream.CancelWrite(tunnel.CodeOverloaded)
			stream.CancelRead(tunnel.CodeOverloaded)
			continue
		}
		// Write side first: the pipe resets the stream as soon as a side
		// fails, and the peer must see why (0x3), not a FLOW_RESET.
		fid, ok := g.flows.add(closerFunc(func() error {
			stream.CancelWrite(tunnel.CodeShutdown)
			stream.CancelRead(tunnel.CodeShutdown)
			return nil
		}))
		if !ok {
			grant.done()
			stream.CancelWrite(tunnel.CodeShutdown)
			stream.CancelRead(tunnel.CodeShutdown)
			continue
		}
		go func() {
			defer g.flows.done(fid)
			defer grant.done()
			g.handleIngress(ctx, stream, peer, id, grant)
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
