package component

import (
	"time"

	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/dnsshim"
	"github.com/causeway-mesh/causeway/internal/admin"
	"github.com/causeway-mesh/causeway/internal/rungroup"
)

// RunDNSShim runs a DNS shim until ctx ends: it obtains its certificate
// from the federator, follows the catalog and answers the clusterset zone
// over UDP and TCP for its cluster.
func RunDNSShim(ctx context.Context, c *DNSShimConfig, log *slog.Logger) error {
	log = log.With("cluster", c.Cluster)
	logDeprecations(log, c.Deprecations)
	udp, err := net.ListenPacket("udp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s for DNS (udp): %w", c.Listen, err)
	}
	defer udp.Close()
	tcp, err := listenTCP(c.Listen, "DNS (tcp)")
	if err != nil {
		return err
	}
	defer tcp.Close()
	adminLn, err := listenTCP(c.HTTP, "dnsshim HTTP (metrics, health)")
	if err != nil {
		return err
	}
	defer adminLn.Close()
	reg := newRegistry()

	ident, err := newClientIdentity(ctx, &c.ClientConfig, "dnsshim", log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // SIGINT/SIGTERM while waiting for the first certificate: a clean stop
		}
		return err
	}
	g := rungroup.New(ctx)
	g.Go("dnsshim certificate", ident.run)
	if err := certs.RegisterExpiry(reg, "dnsshim", ident.cert); err != nil {
		_ = g.Stop()
		return err
	}
	cat, _, err := ident.catalog(g, "dnsshim", reg)
	if err != nil {
		_ = g.Stop()
		return err
	}
	shim, err := dnsshim.New(dnsshim.Config{Zone: c.Domain + ".", Cluster: c.Cluster, TTL: c.TTL.Duration,
		RateLimit: c.RateLimit.dnsRateLimit(), Logger: log, Registerer: reg}, cat)
	if err != nil {
		_ = g.Stop()
		return err
	}
	g.Go("dnsshim", func(ctx context.Context) error { return shim.Serve(ctx, udp, tcp) })
	serveAdmin(g, adminLn, admin.New(reg, map[string]admin.Check{"catalog": CatalogReady(cat),
		"identity": IdentityReady(ident.cert, cat, time.Now)}))
	log.Info("dnsshim started", "listen", c.Listen, "zone", c.Domain, "http", adminLn.Addr().String())
	return g.Wait()
}
