package component

import (
	"fmt"
	"time"

	"github.com/causeway-mesh/causeway/dnsshim"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DNSShimConfig is the file of `causeway dnsshim --config`.
type DNSShimConfig struct {
	ClientConfig `json:",inline"`
	// Listen is the DNS address, UDP and TCP. Default :5353.
	Listen string `json:"listen,omitempty"`
	// HTTP serves /metrics, /healthz, /readyz. Default :9092.
	HTTP string `json:"http,omitempty"`
	// Admin is the deprecated name of HTTP.
	Admin string `json:"admin,omitempty"`
	// Deprecations are warnings about deprecated keys of the file, logged
	// at start.
	Deprecations []string `json:"-"`
	// TTL of positive answers (default 5s).
	TTL metav1.Duration `json:"ttl,omitempty"`
	// RateLimit limits UDP answers per source (docs/dns.md).
	RateLimit DNSRateLimitConfig `json:"rateLimit,omitempty"`
}

// DNSRateLimitConfig is dnsshim.RateLimit in the file.
type DNSRateLimitConfig struct {
	// Disabled turns the limit off.
	Disabled bool `json:"disabled,omitempty"`
	// QPS answers per second per source (default 1000).
	QPS int `json:"qps,omitempty"`
	// Burst per source (default 2×qps).
	Burst int `json:"burst,omitempty"`
	// IPv4PrefixLength and IPv6PrefixLength group sources (default 32, 64).
	IPv4PrefixLength int `json:"ipv4PrefixLength,omitempty"`
	IPv6PrefixLength int `json:"ipv6PrefixLength,omitempty"`
}

// dnsRateLimit is the shim's dnsshim.RateLimit.
func (r DNSRateLimitConfig) dnsRateLimit() dnsshim.RateLimit {
	return dnsshim.RateLimit{Disabled: r.Disabled, QPS: float64(r.QPS), Burst: float64(r.Burst),
		IPv4PrefixLen: r.IPv4PrefixLength, IPv6PrefixLen: r.IPv6PrefixLength}
}

// LoadDNSShimConfig reads, defaults and validates a DNS shim file.
func LoadDNSShimConfig(path string) (*DNSShimConfig, error) {
	c := &DNSShimConfig{}
	if err := load("dnsshim", path, c); err != nil {
		return nil, err
	}
	var err error
	if c.HTTP, c.Deprecations, err = renamed("http", c.HTTP, "admin", c.Admin); err != nil {
		return nil, fmt.Errorf("dnsshim config %s: %w", path, err)
	}
	c.defaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("dnsshim config %s: %w", path, err)
	}
	return c, nil
}

func (c *DNSShimConfig) defaults() {
	c.Identity.defaults()
	if c.Listen == "" {
		c.Listen = DefaultDNSListen
	}
	if c.HTTP == "" {
		c.HTTP = DefaultDNSHTTP
	}
}

func (c *DNSShimConfig) validate() error {
	if err := c.ClientConfig.validate(); err != nil {
		return err
	}
	if err := checkHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := checkHostPort(c.HTTP); err != nil {
		return fmt.Errorf("%s: %w", httpKey(c.Admin), err)
	}
	if d := c.TTL.Duration; d < 0 || d%time.Second != 0 {
		return fmt.Errorf("ttl: want whole seconds (DNS TTLs are in seconds), like 5s, got %s", d)
	}
	if r := c.RateLimit; r.QPS < 0 || r.Burst < 0 || r.IPv4PrefixLength < 0 || r.IPv4PrefixLength > 32 || r.IPv6PrefixLength < 0 || r.IPv6PrefixLength > 128 {
		return fmt.Errorf("rateLimit: want qps and burst positive, ipv4PrefixLength 1-32, ipv6PrefixLength 1-128, got %+v", r)
	}
	return nil
}
