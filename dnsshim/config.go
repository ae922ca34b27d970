package dnsshim

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/causeway-mesh/causeway/internal/lib/names"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Server.
type Config struct {
	// Zone served. If empty, "clusterset.local.".
	Zone string
	// Cluster whose view of the clusterset is answered. Required.
	Cluster string
	// TTL of positive answers. If zero, 5s.
	TTL time.Duration
	// RateLimit limits UDP answers per source; the zero value is on with
	// its defaults.
	RateLimit RateLimit
	// Logger; if nil, slog.Default(). The caller names the cluster in it
	// (the wiring adds the "cluster" attribute once per process).
	Logger *slog.Logger
	// Registerer for metrics; if nil, not registered.
	Registerer prometheus.Registerer
}

func (c Config) withDefaults() Config {
	if c.Zone == "" {
		c.Zone = "clusterset.local."
	}
	c.Zone = dns.CanonicalName(c.Zone)
	if c.TTL == 0 {
		c.TTL = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first problem of c.
func (c Config) Validate() error {
	if !names.IsDNSLabel(c.Cluster) {
		return fmt.Errorf("dnsshim config: cluster name %q is not a DNS label", c.Cluster)
	}
	if _, ok := dns.IsDomainName(c.withDefaults().Zone); !ok {
		return fmt.Errorf("dnsshim config: zone %q is not a domain name", c.Zone)
	}
	if c.TTL < 0 {
		return fmt.Errorf("dnsshim config: negative TTL %s", c.TTL)
	}
	return c.RateLimit.validate()
}
