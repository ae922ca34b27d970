package devenv

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/app/routefile"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	"github.com/miekg/dns"
)

// ClusterSpec names and locates one dev cluster.
type ClusterSpec struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	Zone   string `json:"zone"`
}

// DefaultClusters are east, west and north.
var DefaultClusters = []ClusterSpec{
	{Name: "east", Region: "us-east", Zone: "us-east-1a"},
	{Name: "west", Region: "us-west", Zone: "us-west-1a"},
	{Name: "north", Region: "eu-north", Zone: "eu-north-1a"},
}

// Config configures a dev clusterset. The zero value is valid.
type Config struct {
	// Clusters to start. If empty, DefaultClusters.
	Clusters []ClusterSpec
	// Net is the /16 inside 127.0.0.0/8 every address comes from: etcd on
	// .0.1, cluster i (from 1) on .i.1 with VIPs in .i.128/25.
	// If invalid (zero), 127.10.0.0/16.
	Net netip.Prefix
	// DataDir holds etcd's data and the generated files. If empty, a
	// temporary directory removed on exit.
	DataDir string
	// StateFile, if set, receives the State JSON once everything is ready.
	StateFile string
	// Domain is the clusterset DNS zone. If empty, "clusterset.local". One
	// trailing dot (the fully qualified form, "example.com.") is accepted
	// and dropped.
	Domain string
	// Ports; zero means the default shown.
	DNSPort       int // 1053
	GatewayPort   int // 4433 (UDP), as component.DefaultGatewayQUIC
	FederatorPort int // 7443; its bootstrap (Certs.Sign) port is FederatorPort+1
	AdminPort     int // 9090: the federator's HTTP port; the gateway's is +1, the DNS shim's +2
	EtcdPort      int // 2379 (peer port is EtcdPort+1)
	// RoutesFile, if set, is a static routes file (docs/traffic.md) that
	// every cluster's gateway loads (the `routes:` of its gateway.yaml) and
	// re-reads when it changes. It must load before anything starts.
	RoutesFile string
	// ReadyTimeout bounds start-up. If zero, 60s.
	ReadyTimeout time.Duration
	// LeafLifetime of component certificates. If zero, 1h.
	LeafLifetime time.Duration
	// Logger; if nil, slog.Default().
	Logger *slog.Logger
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// ErrBadConfig wraps every configuration error.
var ErrBadConfig = errors.New("invalid dev configuration")

func (c Config) withDefaults() Config {
	if len(c.Clusters) == 0 {
		c.Clusters = DefaultClusters
	}
	if !c.Net.IsValid() {
		c.Net = netip.MustParsePrefix("127.10.0.0/16")
	}
	c.Domain = strings.TrimSuffix(c.Domain, ".")
	if c.Domain == "" {
		c.Domain = "clusterset.local"
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.DNSPort, 1053)
	def(&c.GatewayPort, 4433)
	def(&c.FederatorPort, 7443)
	def(&c.AdminPort, 9090)
	def(&c.EtcdPort, 2379)
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 60 * time.Second
	}
	if c.LeafLifetime == 0 {
		c.LeafLifetime = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RoutesFile != "" {
		// The gateways' files name it absolutely, so that they stay
		// valid from anywhere.
		if abs, err := filepath.Abs(c.RoutesFile); err == nil {
			c.RoutesFile = abs
		}
	}
	return c
}

// Validate reports the first problem of c (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Net.Bits() != 16 || !loopback.Contains(c.Net.Addr()) || c.Net.Masked() != c.Net {
		return fmt.Errorf("%w: --net %s must be a /16 inside 127.0.0.0/8, like 127.10.0.0/16", ErrBadConfig, c.Net)
	}
	if len(c.Clusters) > 120 {
		return fmt.Errorf("%w: %d clusters, at most 120", ErrBadConfig, len(c.Clusters))
	}
	seen := map[string]bool{}
	for i, s := range c.Clusters {
		switch {
		case s.Name == "":
			return fmt.Errorf("%w: cluster %d has an empty name", ErrBadConfig, i+1)
		case !names.IsDNSLabel(s.Name):
			return fmt.Errorf("%w: cluster name %q is not a DNS label (lowercase letters, digits, '-')", ErrBadConfig, s.Name)
		case seen[s.Name]:
			return fmt.Errorf("%w: cluster name %q given twice", ErrBadConfig, s.Name)
		}
		seen[s.Name] = true
	}
	if err := checkDomain(c.Domain); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	for _, p := range []struct {
		flag string
		port int
	}{
		{"--dns-port", c.DNSPort}, {"--gateway-port", c.GatewayPort}, {"--federator-port", c.FederatorPort},
		{"--http-port", c.AdminPort}, {"--etcd-port", c.EtcdPort},
	} {
		if p.port < 1 || p.port > 65535 {
			return fmt.Errorf("%w: %s: port %d out of range (1-65535)", ErrBadConfig, p.flag, p.port)
		}
	}
	if c.FederatorPort == 65535 {
		// The federator's bootstrap (Certs.Sign) port is its port + 1.
		return fmt.Errorf("%w: --federator-port %d: at most 65534, the bootstrap port is --federator-port + 1", ErrBadConfig, c.FederatorPort)
	}
	if c.AdminPort > 65533 {
		// The gateway's and DNS shim's HTTP ports follow the federator's.
		return fmt.Errorf("%w: --http-port %d: at most 65533, the gateway's and DNS shim's HTTP ports are --http-port + 1 and + 2", ErrBadConfig, c.AdminPort)
	}
	if c.EtcdPort == 65535 {
		// The embedded etcd's peer port is the client port + 1.
		return fmt.Errorf("%w: --etcd-port %d: at most 65534, the peer port is --etcd-port + 1", ErrBadConfig, c.EtcdPort)
	}
	if c.RoutesFile != "" {
		if _, err := routefile.Load(c.RoutesFile); err != nil {
			return fmt.Errorf("%w: --routes: %w", ErrBadConfig, err)
		}
	}
	return nil
}

// checkDomain checks the clusterset domain (without its trailing dot)
// before anything starts: a DNS name of dot-separated labels that every
// cluster's trust domain and the DNS shim's zone accept.
func checkDomain(d string) error {
	if strings.Contains(d, "..") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
		return fmt.Errorf("--domain %q: empty label; want a DNS name like clusterset.local (one trailing dot is allowed)", d)
	}
	if _, ok := dns.IsDomainName(d + "."); !ok {
		return fmt.Errorf("--domain %q is not a DNS name; want one like clusterset.local", d)
	}
	if _, err := certs.NewID(certs.TrustDomainFor("cluster", d), "x"); err != nil {
		return fmt.Errorf("--domain %q cannot form the clusters' trust domains (letters, digits, '-', '_' and '.' only): %w", d, err)
	}
	return nil
}

// clusterIP is the address of cluster i (0-based).
func (c Config) clusterIP(i int) netip.Addr {
	b := c.Net.Addr().As4()
	return netip.AddrFrom4([4]byte{b[0], b[1], byte(i + 1), 1})
}

// vipRange is the clusterset IP range of cluster i (0-based).
func (c Config) vipRange(i int) netip.Prefix {
	b := c.Net.Addr().As4()
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], byte(i + 1), 128}), 25)
}

// etcdIP is the address of the embedded etcd.
func (c Config) etcdIP() netip.Addr {
	b := c.Net.Addr().As4()
	return netip.AddrFrom4([4]byte{b[0], b[1], 0, 1})
}

// ParseClusters parses "name[:region[:zone]],..." as given to --clusters.
func ParseClusters(s string) ([]ClusterSpec, error) {
	var out []ClusterSpec
	for _, part := range splitNonEmpty(s, ',') {
		fields := splitKeep(part, ':')
		if len(fields) > 3 {
			return nil, fmt.Errorf("%w: cluster %q: want name[:region[:zone]]", ErrBadConfig, part)
		}
		spec := ClusterSpec{Name: fields[0]}
		if len(fields) > 1 {
			spec.Region = fields[1]
		}
		if len(fields) > 2 {
			spec.Zone = fields[2]
		}
		if spec.Region == "" {
			spec.Region = "region-" + spec.Name
		}
		if spec.Zone == "" {
			spec.Zone = spec.Region + "-a"
		}
		out = append(out, spec)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: --clusters is empty", ErrBadConfig)
	}
	return out, nil
}

func splitKeep(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func splitNonEmpty(s string, sep byte) []string {
	parts := splitKeep(s, sep)
	if len(parts) == 1 && parts[0] == "" {
		return nil
	}
	return parts
}
