package component

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway"
	"github.com/causeway-mesh/causeway/gateway/kuberoutes"
	"github.com/causeway-mesh/causeway/internal/app/authzfile"
	"github.com/causeway-mesh/causeway/internal/app/routefile"
	"github.com/causeway-mesh/causeway/internal/lib/admin"
	"github.com/causeway-mesh/causeway/internal/lib/retry"
	"github.com/causeway-mesh/causeway/internal/lib/rungroup"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// GatewayListeners are the sockets a gateway serves on; RunGatewayOn
// closes them when it returns.
type GatewayListeners struct {
	// QUIC carries the tunnel from and to peer gateways; HTTP serves
	// metrics, health and explain.
	QUIC *net.UDPConn
	HTTP net.Listener
}

// Close closes every socket that is set.
func (l GatewayListeners) Close() {
	if l.QUIC != nil {
		_ = l.QUIC.Close()
	}
	if l.HTTP != nil {
		_ = l.HTTP.Close()
	}
}

// ListenGateway binds the sockets of c.
func ListenGateway(c *GatewayConfig) (GatewayListeners, error) {
	var l GatewayListeners
	udpAddr, err := net.ResolveUDPAddr("udp", c.Listen)
	if err != nil {
		return l, fmt.Errorf("gateway listen address %s: %w", c.Listen, err)
	}
	if l.QUIC, err = net.ListenUDP("udp", udpAddr); err != nil {
		return l, fmt.Errorf("listen on %s for gateway (udp): %w", c.Listen, err)
	}
	if l.HTTP, err = listenTCP(c.HTTP, "gateway HTTP (metrics, health, explain)"); err != nil {
		l.Close()
		return l, err
	}
	return l, nil
}

// RunGateway runs a gateway instance until ctx ends on sockets bound to
// c's addresses (ListenGateway); see RunGatewayOn.
func RunGateway(ctx context.Context, c *GatewayConfig, log *slog.Logger) error {
	ls, err := ListenGateway(c)
	if err != nil {
		return err
	}
	return RunGatewayOn(ctx, c, log, ls)
}

// RunGatewayOn runs a gateway instance on ls until ctx ends: it obtains its
// certificate from the federator, follows the catalog, serves QUIC ingress
// and the egress listeners, and announces itself while it serves. On
// shutdown it withdraws the announcement (peers stop choosing it at once)
// and gives open flows the shutdown grace.
func RunGatewayOn(ctx context.Context, c *GatewayConfig, log *slog.Logger, ls GatewayListeners) error {
	defer ls.Close()
	log = log.With("cluster", c.Cluster, "instance", c.Instance)
	logDeprecations(log, c.Deprecations)
	udp, adminLn := ls.QUIC, ls.HTTP
	reg := newRegistry()

	ident, err := newClientIdentity(ctx, &c.ClientConfig, "gateway", log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // SIGINT/SIGTERM while waiting for the first certificate: a clean stop
		}
		return err
	}
	g := rungroup.New(ctx)
	g.Go("gateway certificate", ident.Run)
	if err := certs.RegisterExpiry(reg, "gateway", ident.cert); err != nil {
		_ = g.Stop()
		return err
	}
	cat, conn, err := ident.Catalog(g, "gateway", reg)
	if err != nil {
		_ = g.Stop()
		return err
	}
	gcfg := c.gatewayConfig()
	gcfg.Logger, gcfg.Registerer = log, reg
	if err := c.routeSource(g, &gcfg, log, reg); err != nil {
		_ = g.Stop()
		return err
	}
	if err := c.authorization(g, &gcfg, log, reg); err != nil {
		_ = g.Stop()
		return err
	}
	gw, err := gateway.New(gcfg, cat, ident.cert)
	if err != nil {
		_ = g.Stop()
		return err
	}
	g.Go("gateway", func(ctx context.Context) error {
		select { // serve egress only from a synced catalog
		case <-ctx.Done():
			return nil
		case <-cat.Ready():
		}
		return gw.Run(ctx, udp, gateway.DefaultListen)
	})
	g.Go("announcement", func(ctx context.Context) error {
		select { // announce only once the gateway serves
		case <-ctx.Done():
			return nil
		case <-gw.Ready():
		}
		announce(ctx, conn, c.Instance, c.Advertise, log)
		return nil
	})
	adm := admin.New(reg, map[string]admin.Check{"catalog": catalogReady(cat), "identity": identityCheck(ident.cert, cat, time.Now), "egress": func() error {
		select {
		case <-gw.Ready():
			return nil
		default:
			return fmt.Errorf("egress listeners not opened yet")
		}
	}})
	adm.Handle("GET /explain", gw.ExplainHandler())
	serveAdmin(g, adminLn, adm)
	log.Info("gateway started", "listen", udp.LocalAddr().String(), "advertise", c.Advertise, "http", adminLn.Addr().String())
	return g.Wait()
}

// announce keeps the gateway's Catalog.AnnounceGateway call open on conn
// (a connection with the gateway's identity) until ctx ends, calling again
// with back-off when it breaks.
func announce(ctx context.Context, conn *grpc.ClientConn, instance string, addrs []string, log *slog.Logger) {
	rpc := causewayv1.NewCatalogClient(conn)
	var backoff retry.Backoff
	for ctx.Err() == nil {
		stream, err := rpc.AnnounceGateway(ctx, &causewayv1.AnnounceGatewayRequest{Instance: instance, Addresses: addrs})
		for err == nil {
			var resp *causewayv1.AnnounceGatewayResponse
			if resp, err = stream.Recv(); err == nil {
				log.Info("gateway announced", "lease", resp.GetLeaseId(), "addresses", addrs)
				backoff.Reset()
			}
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("gateway announcement interrupted; retrying", "err", err, "in", backoff.Peek())
		if !backoff.Wait(ctx) {
			return
		}
	}
}

// gatewayConfig is the gateway package's configuration of c (no logger
// or registry).
func (c *GatewayConfig) gatewayConfig() gateway.Config {
	l := c.Limits
	gcfg := gateway.Config{Cluster: c.Cluster, ShutdownGrace: c.ShutdownGrace.Duration,
		MaxHeaderSize: l.MaxHeaderSize, HeaderTimeout: l.HeaderTimeout.Duration, DialTimeout: l.DialTimeout.Duration,
		FlowIdleTimeout: l.FlowIdleTimeout.Duration, MaxAttempts: l.MaxAttempts,
		ReverifyInterval: l.ReverifyInterval.Duration, ReplaceGrace: l.ReplaceGrace.Duration,
		EgressMode: c.Egress.Mode, EgressBind: c.Egress.Bind,
		HalfClosedTimeout: l.HalfClosedTimeout.Duration, MaxFlowsPerSource: l.MaxFlowsPerSource,
		MaxPeerConns: l.MaxConnectionsPerPeerCluster, MaxPeerStreams: l.MaxStreamsPerPeerCluster,
		MaxPeerHeaderBytes: l.MaxHeaderBytesPerPeerCluster}
	gcfg.L7 = gateway.L7Config{MaxHeaderBytes: l.L7MaxHeaderBytes, MaxBodyBytes: l.L7MaxBodyBytes}
	gcfg.Tunnel.MaxIncomingStreams = l.MaxStreamsPerPeer
	gcfg.Tunnel.KeepAlivePeriod = l.KeepAlivePeriod.Duration
	gcfg.Tunnel.IdleTimeout = l.IdleTimeout.Duration
	return gcfg
}

// authorization sets gcfg's source identities and policies from the
// static authorization file, if any, and follows its changes in g.
func (c *GatewayConfig) authorization(g *rungroup.Group, gcfg *gateway.Config, log *slog.Logger, reg prometheus.Registerer) error {
	if c.Authorization == "" {
		return nil
	}
	src, err := authzfile.New(authzfile.Config{Path: c.Authorization, Cluster: c.Cluster, Domain: c.Domain,
		Logger: log, Registerer: reg})
	if err != nil {
		return fmt.Errorf("authorization: %w", err)
	}
	gcfg.Sources, gcfg.Authorization = src, src
	g.Go("authorization file", src.Run)
	return nil
}

// routeSource sets gcfg's routes from the configured source (a static
// file, or the cluster's HTTPRoutes and GRPCRoutes with their status) and
// runs it in g.
func (c *GatewayConfig) routeSource(g *rungroup.Group, gcfg *gateway.Config, log *slog.Logger, reg prometheus.Registerer) error {
	switch {
	case c.Routes != "":
		routes, err := routefile.New(routefile.Config{Path: c.Routes, Logger: log, Registerer: reg})
		if err != nil {
			return err
		}
		gcfg.Routes = routes
		g.Go("routes file", routes.Run)
	case c.KubernetesRoutes != nil:
		rc, err := restConfig(c.KubernetesRoutes.Kubeconfig)
		if err != nil {
			return fmt.Errorf("kubernetesRoutes: %w", err)
		}
		client, err := gatewayclient.NewForConfig(rc)
		if err != nil {
			return fmt.Errorf("kubernetesRoutes: %w", err)
		}
		src, err := kuberoutes.NewSource(kuberoutes.SourceConfig{Client: client, Namespace: c.KubernetesRoutes.Namespace, Log: log})
		if err != nil {
			return err
		}
		w, err := kuberoutes.NewStatusWriter(kuberoutes.StatusConfig{Source: src, Log: log})
		if err != nil {
			return err
		}
		gcfg.Routes, gcfg.RouteStatus = src, w
		g.Go("kubernetes routes", src.Run)
		g.Go("route status", w.Run)
	}
	return nil
}
