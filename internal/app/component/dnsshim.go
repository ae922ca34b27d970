package component

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/dnsshim"
	"github.com/causeway-mesh/causeway/internal/lib/admin"
	"github.com/causeway-mesh/causeway/internal/lib/rungroup"
)

// DNSShimListeners are the sockets a DNS shim serves on; RunDNSShimOn
// closes them when it returns.
type DNSShimListeners struct {
	// UDP and TCP answer DNS; HTTP serves metrics and health.
	UDP       net.PacketConn
	TCP, HTTP net.Listener
}

// Close closes every socket that is set.
func (l DNSShimListeners) Close() {
	if l.UDP != nil {
		_ = l.UDP.Close()
	}
	for _, ln := range []net.Listener{l.TCP, l.HTTP} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// ListenDNSShim binds the sockets of c.
func ListenDNSShim(c *DNSShimConfig) (DNSShimListeners, error) {
	var l DNSShimListeners
	var err error
	if l.UDP, err = net.ListenPacket("udp", c.Listen); err != nil {
		return l, fmt.Errorf("listen on %s for DNS (udp): %w", c.Listen, err)
	}
	if l.TCP, err = listenTCP(c.Listen, "DNS (tcp)"); err != nil {
		l.Close()
		return l, err
	}
	if l.HTTP, err = listenTCP(c.HTTP, "dnsshim HTTP (metrics, health)"); err != nil {
		l.Close()
		return l, err
	}
	return l, nil
}

// RunDNSShim runs a DNS shim until ctx ends on sockets bound to c's
// addresses (ListenDNSShim); see RunDNSShimOn.
func RunDNSShim(ctx context.Context, c *DNSShimConfig, log *slog.Logger) error {
	ls, err := ListenDNSShim(c)
	if err != nil {
		return err
	}
	return RunDNSShimOn(ctx, c, log, ls)
}

// RunDNSShimOn runs a DNS shim on ls until ctx ends: it obtains its
// certificate from the federator, follows the catalog and answers the
// clusterset zone over UDP and TCP for its cluster.
func RunDNSShimOn(ctx context.Context, c *DNSShimConfig, log *slog.Logger, ls DNSShimListeners) error {
	defer ls.Close()
	log = log.With("cluster", c.Cluster)
	logDeprecations(log, c.Deprecations)
	udp, tcp, adminLn := ls.UDP, ls.TCP, ls.HTTP
	reg := newRegistry()

	ident, err := newClientIdentity(ctx, &c.ClientConfig, "dnsshim", log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // SIGINT/SIGTERM while waiting for the first certificate: a clean stop
		}
		return err
	}
	g := rungroup.New(ctx)
	g.Go("dnsshim certificate", ident.Run)
	if err := certs.RegisterExpiry(reg, "dnsshim", ident.cert); err != nil {
		_ = g.Stop()
		return err
	}
	cat, _, err := ident.Catalog(g, "dnsshim", reg)
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
	serveAdmin(g, adminLn, admin.New(reg, map[string]admin.Check{"catalog": catalogReady(cat),
		"identity": identityCheck(ident.cert, cat, time.Now)}))
	log.Info("dnsshim started", "listen", c.Listen, "zone", c.Domain, "http", adminLn.Addr().String())
	return g.Wait()
}
