package component

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/causeway-mesh/causeway/internal/configfile"
	"github.com/causeway-mesh/causeway/internal/names"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultDomain is the clusterset domain when a configuration names none.
const DefaultDomain = "clusterset.local"

// Defaults of the listeners.
const (
	DefaultFederatorGRPC      = ":7443"
	DefaultFederatorBootstrap = ":7444"
	DefaultFederatorHTTP      = ":9090"
	DefaultGatewayQUIC        = ":4433"
	DefaultGatewayHTTP        = ":9091"
	DefaultDNSListen          = ":5353"
	DefaultDNSHTTP            = ":9092"
)

// Identity is what every component shares: which cluster it belongs to.
type Identity struct {
	// Cluster is this cluster's name, a DNS label. Required.
	Cluster string `json:"cluster"`
	// Domain is the clusterset domain (default clusterset.local); the
	// cluster's trust domain is <cluster>.<domain>.
	Domain string `json:"domain,omitempty"`
}

func (id *Identity) defaults() {
	if id.Domain == "" {
		id.Domain = DefaultDomain
	}
}

func (id *Identity) validate() error {
	if id.Cluster == "" {
		return errors.New("cluster: required (this cluster's name, a DNS label such as east)")
	}
	if !names.IsDNSLabel(id.Cluster) {
		return fmt.Errorf("cluster: %q is not a DNS label (%s)", id.Cluster, dnsLabelRule)
	}
	if _, err := certs.NewID(id.TrustDomain(), "federator"); err != nil {
		return fmt.Errorf("domain: %q is not a domain name (lowercase letters, digits, '-' and '.', like %s)", id.Domain, DefaultDomain)
	}
	return nil
}

// dnsLabelRule says what a DNS label is, for error messages.
const dnsLabelRule = "lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit"

// TrustDomain is the cluster's SPIFFE trust domain.
func (id Identity) TrustDomain() string { return certs.TrustDomainFor(id.Cluster, id.Domain) }

// FederatorConfig is the file of `causeway federator --config`.
type FederatorConfig struct {
	Identity `json:",inline"`
	// Region and Zone locate the cluster for locality routing.
	Region string `json:"region,omitempty"`
	Zone   string `json:"zone,omitempty"`
	// Instance names this replica in the leader election (default
	// hostname-pid).
	Instance string `json:"instance,omitempty"`
	// LeaderTTL is the leader election lease (default 10s).
	LeaderTTL metav1.Duration `json:"leaderTTL,omitempty"`

	Etcd   EtcdConfig            `json:"etcd"`
	Listen FederatorListenConfig `json:"listen,omitempty"`
	// CADir is the cluster's CA directory (`causeway certs init`); it is
	// re-read every 10s, so `causeway certs rotate-ca` needs no restart.
	CADir string `json:"caDir"`
	// CAReloadInterval is how often CADir is re-read (default 10s).
	CAReloadInterval metav1.Duration `json:"caReloadInterval,omitempty"`
	// VIPRanges are the CIDRs clusterset IPs come from on hosts (static
	// exports). Required without kubernetes.
	VIPRanges []string `json:"vipRanges,omitempty"`
	// Exports says where this cluster's exports come from: exactly one of
	// static or kubernetes.
	Exports ExportsConfig `json:"exports"`
	// Signing configures Certs.Sign.
	Signing SigningConfig `json:"signing,omitempty"`
	// Deprecations are warnings about deprecated keys of the file, logged
	// at start.
	Deprecations []string `json:"-"`
}

// EtcdConfig is how the federator reaches the federation etcd.
type EtcdConfig struct {
	// Endpoints of the etcd members. Required.
	Endpoints []string `json:"endpoints"`
	// CAFile, CertFile and KeyFile enable TLS (client certificate
	// optional).
	CAFile   string `json:"caFile,omitempty"`
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
	// Username and PasswordFile enable etcd authentication (each cluster's
	// user may write only under its own keys).
	Username     string `json:"username,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
	// DialTimeout (default 5s).
	DialTimeout metav1.Duration `json:"dialTimeout,omitempty"`
}

// FederatorListenConfig are the federator's listeners.
type FederatorListenConfig struct {
	// GRPC serves Catalog, Admin (mutual TLS). Default :7443.
	GRPC string `json:"grpc,omitempty"`
	// Bootstrap serves Certs.Sign to callers without a certificate yet
	// (server-authenticated TLS and a bearer token). Default :7444.
	Bootstrap string `json:"bootstrap,omitempty"`
	// HTTP serves /metrics, /healthz, /readyz. Default :9090.
	HTTP string `json:"http,omitempty"`
	// Admin is the deprecated name of HTTP (before it was renamed, so
	// that "admin" names only the federator's Admin gRPC API).
	Admin string `json:"admin,omitempty"`
}

// ExportsConfig selects the export source.
type ExportsConfig struct {
	// Static is a static exports file (docs/static-exports.md), re-read
	// when it changes.
	Static string `json:"static,omitempty"`
	// Kubernetes reads ServiceExports and writes ServiceImports.
	Kubernetes *KubernetesConfig `json:"kubernetes,omitempty"`
}

// KubernetesConfig is the Kubernetes source and sink.
type KubernetesConfig struct {
	// Kubeconfig path; empty means in-cluster.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// DefaultZone of endpoints whose EndpointSlice names none.
	DefaultZone string `json:"defaultZone,omitempty"`
	// GatewayService is "namespace/name" of the local gateway's Service.
	GatewayService string `json:"gatewayService"`
	// EgressPorts is the gateway port range given to imported ports,
	// "min-max" (default 30000-32767).
	EgressPorts string `json:"egressPorts,omitempty"`
}

// SigningConfig configures the federator's Certs.Sign.
type SigningConfig struct {
	// Lifetime of issued leaves (default 24h).
	Lifetime metav1.Duration `json:"lifetime,omitempty"`
	// Components that may get certificates (default gateway, dnsshim).
	Components []string `json:"components,omitempty"`
	// JoinTokensFile is a YAML map of join token → component.
	JoinTokensFile string `json:"joinTokensFile,omitempty"`
	// TokenReview authenticates ServiceAccount tokens with the cluster's
	// apiserver (requires exports.kubernetes).
	TokenReview *TokenReviewConfig `json:"tokenReview,omitempty"`
}

// TokenReviewConfig maps ServiceAccounts to components.
type TokenReviewConfig struct {
	// Accounts maps "namespace/serviceaccount" to a component.
	Accounts map[string]string `json:"accounts"`
	// Audiences the token must carry (default causeway).
	Audiences []string `json:"audiences,omitempty"`
}

// ClientConfig is what gateways and DNS shims share: how they reach their
// federator and obtain their certificate.
type ClientConfig struct {
	Identity `json:",inline"`
	// Federator is the federator's gRPC address (Catalog), or several
	// replicas' separated by commas. Required.
	Federator string `json:"federator"`
	// Bootstrap is the federator's Certs.Sign address (or addresses, as
	// Federator). Required.
	Bootstrap string `json:"bootstrap"`
	// CAFile holds the cluster's CA certificates (bundle.crt of the CA
	// directory): the federator is verified against it.
	CAFile string `json:"caFile"`
	// TokenFile holds the join token or ServiceAccount token presented to
	// Certs.Sign; re-read for every renewal.
	TokenFile string `json:"tokenFile"`
}

func (c *ClientConfig) validate() error {
	if err := c.Identity.validate(); err != nil {
		return err
	}
	for _, f := range []struct{ name, v, what string }{
		{"federator", c.Federator, "the federator's gRPC host:port, like 10.0.0.1:7443"},
		{"bootstrap", c.Bootstrap, "the federator's bootstrap host:port, like 10.0.0.1:7444"},
		{"caFile", c.CAFile, "the cluster's bundle.crt"},
		{"tokenFile", c.TokenFile, "the file holding the join token"},
	} {
		if f.v == "" {
			return fmt.Errorf("%s: required (%s)", f.name, f.what)
		}
	}
	for _, f := range []struct{ name, v string }{{"federator", c.Federator}, {"bootstrap", c.Bootstrap}} {
		for _, a := range splitAddrs(f.v) {
			if err := checkHostPort(a); err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
		}
	}
	return nil
}

// GatewayConfig is the file of `causeway gateway --config`.
type GatewayConfig struct {
	ClientConfig `json:",inline"`
	// Instance names this gateway replica, a DNS label (default: the
	// hostname's first label).
	Instance string `json:"instance,omitempty"`
	// Listen is the QUIC (UDP) address. Default :4433.
	Listen string `json:"listen,omitempty"`
	// Advertise are the addresses peers dial (default: Listen, which must
	// then name a host).
	Advertise []string `json:"advertise,omitempty"`
	// HTTP serves /metrics, /healthz, /readyz, /explain. Default :9091.
	HTTP string `json:"http,omitempty"`
	// Admin is the deprecated name of HTTP.
	Admin string `json:"admin,omitempty"`
	// Deprecations are warnings about deprecated keys of the file, logged
	// at start.
	Deprecations []string `json:"-"`
	// ShutdownGrace lets open flows finish on SIGTERM (default 1s).
	ShutdownGrace metav1.Duration `json:"shutdownGrace,omitempty"`
	// Egress says where flows to imported services enter the gateway.
	Egress GatewayEgress `json:"egress,omitempty"`
	// Limits of the data plane; zero fields take the gateway's defaults
	// (gateway/README.md).
	Limits GatewayLimits `json:"limits,omitempty"`
}

// GatewayEgress is the gateway's egress mode.
type GatewayEgress struct {
	// Mode "addresses" (default; hosts: listen on the clusterset IPs) or
	// "ports" (Kubernetes: listen on each imported port's egress port,
	// where the derived Services' EndpointSlices point).
	Mode string `json:"mode,omitempty"`
	// Bind is the host "ports" mode listens on (default: every address).
	Bind string `json:"bind,omitempty"`
}

// GatewayLimits are the gateway's configurable limits.
type GatewayLimits struct {
	// MaxHeaderSize caps a stream header, bytes (default 4096).
	MaxHeaderSize int `json:"maxHeaderSize,omitempty"`
	// HeaderTimeout bounds reading a stream header or response (5s).
	HeaderTimeout metav1.Duration `json:"headerTimeout,omitempty"`
	// DialTimeout bounds dialing a backend or a peer (3s).
	DialTimeout metav1.Duration `json:"dialTimeout,omitempty"`
	// FlowIdleTimeout closes a flow without bytes either way (1h).
	FlowIdleTimeout metav1.Duration `json:"flowIdleTimeout,omitempty"`
	// MaxStreamsPerPeer caps concurrent flows a peer connection may open
	// (16384).
	MaxStreamsPerPeer int64 `json:"maxStreamsPerPeer,omitempty"`
	// KeepAlivePeriod and IdleTimeout of peer connections (500ms, 2.5s): a
	// dead peer is detected within their sum.
	KeepAlivePeriod metav1.Duration `json:"keepAlivePeriod,omitempty"`
	IdleTimeout     metav1.Duration `json:"idleTimeout,omitempty"`
	// MaxAttempts bounds the candidates one flow tries (3).
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// ReverifyInterval is how often peer connections are re-verified
	// against the trust bundles and the gateway's certificate (5s).
	ReverifyInterval metav1.Duration `json:"reverifyInterval,omitempty"`
	// ReplaceGrace is how long flows may go on on a replaced or distrusted
	// peer connection (30s).
	ReplaceGrace metav1.Duration `json:"replaceGrace,omitempty"`
}

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
}

// LoadFederatorConfig reads, defaults and validates a federator file.
// Errors name the file and the YAML path of the field.
func LoadFederatorConfig(path string) (*FederatorConfig, error) {
	c := &FederatorConfig{}
	if err := load("federator", path, c); err != nil {
		return nil, err
	}
	if err := c.renames(); err != nil {
		return nil, fmt.Errorf("federator config %s: %w", path, err)
	}
	c.defaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("federator config %s: %w", path, err)
	}
	return c, nil
}

// LoadGatewayConfig reads, defaults and validates a gateway file.
func LoadGatewayConfig(path string) (*GatewayConfig, error) {
	c := &GatewayConfig{}
	if err := load("gateway", path, c); err != nil {
		return nil, err
	}
	var err error
	if c.HTTP, c.Deprecations, err = renamed("http", c.HTTP, "admin", c.Admin); err != nil {
		return nil, fmt.Errorf("gateway config %s: %w", path, err)
	}
	c.defaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("gateway config %s: %w", path, err)
	}
	return c, nil
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

func load(component, path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if err := configfile.Decode(b, into, configfile.Options{}); err != nil {
		return fmt.Errorf("%s config %s: %w", component, path, err)
	}
	return nil
}

// renames applies the deprecated key listen.admin.
func (c *FederatorConfig) renames() error {
	var err error
	c.Listen.HTTP, c.Deprecations, err = renamed("listen.http", c.Listen.HTTP, "listen.admin", c.Listen.Admin)
	return err
}

// renamed resolves a key and its deprecated old name: the value to use,
// the deprecation warning if the old name was used, and an error if both
// were.
func renamed(key, v, oldKey, oldV string) (string, []string, error) {
	switch {
	case oldV == "":
		return v, nil, nil
	case v != "":
		return "", nil, fmt.Errorf("%s and %s are both set: %s is the deprecated name of %s, keep only %s", oldKey, key, oldKey, key, key)
	}
	return oldV, []string{fmt.Sprintf("%s is deprecated, rename it %s (same meaning: the HTTP endpoint of /metrics, /healthz and /readyz)", oldKey, key)}, nil
}

// logDeprecations logs each warning of a loaded configuration once.
func logDeprecations(log interface{ Warn(string, ...any) }, warnings []string) {
	for _, w := range warnings {
		log.Warn("deprecated configuration key", "warning", w)
	}
}

func (c *FederatorConfig) defaults() {
	c.Identity.defaults()
	if c.Listen.GRPC == "" {
		c.Listen.GRPC = DefaultFederatorGRPC
	}
	if c.Listen.Bootstrap == "" {
		c.Listen.Bootstrap = DefaultFederatorBootstrap
	}
	if c.Listen.HTTP == "" {
		c.Listen.HTTP = DefaultFederatorHTTP
	}
	if c.Etcd.DialTimeout.Duration == 0 {
		c.Etcd.DialTimeout.Duration = 5 * time.Second
	}
	if k := c.Exports.Kubernetes; k != nil && k.EgressPorts == "" {
		k.EgressPorts = "30000-32767"
	}
	if tr := c.Signing.TokenReview; tr != nil && len(tr.Audiences) == 0 {
		tr.Audiences = []string{"causeway"}
	}
}

func (c *FederatorConfig) validate() error {
	if err := c.Identity.validate(); err != nil {
		return err
	}
	if len(c.Etcd.Endpoints) == 0 {
		return errors.New("etcd.endpoints: required, at least one host:port of the federation etcd")
	}
	if c.CADir == "" {
		return errors.New("caDir: required, the cluster's CA directory (create it with `causeway certs init`)")
	}
	if (c.Exports.Static == "") == (c.Exports.Kubernetes == nil) {
		return errors.New("exports: set exactly one of static and kubernetes")
	}
	if _, err := c.vipRanges(); err != nil {
		return err
	}
	if c.Exports.Kubernetes == nil && len(c.VIPRanges) == 0 {
		return errors.New("vipRanges: required with static exports")
	}
	if k := c.Exports.Kubernetes; k != nil {
		if _, err := parsePortRange(k.EgressPorts); err != nil {
			return fmt.Errorf("exports.kubernetes.egressPorts: %w", err)
		}
		if ns, name, ok := strings.Cut(k.GatewayService, "/"); !ok || !names.IsDNSLabel(ns) || !names.IsDNSLabel(name) {
			return fmt.Errorf("exports.kubernetes.gatewayService: want namespace/name of the gateway's Service, got %q", k.GatewayService)
		}
	}
	if c.Signing.JoinTokensFile == "" && c.Signing.TokenReview == nil {
		return errors.New("signing: set joinTokensFile or tokenReview, or no component can obtain a certificate")
	}
	if c.Signing.TokenReview != nil && c.Exports.Kubernetes == nil {
		return errors.New("signing.tokenReview needs exports.kubernetes (the apiserver that reviews tokens)")
	}
	for _, l := range []struct{ name, v string }{
		{"listen.grpc", c.Listen.GRPC}, {"listen.bootstrap", c.Listen.Bootstrap}, {c.httpKey(), c.Listen.HTTP},
	} {
		if err := checkHostPort(l.v); err != nil {
			return fmt.Errorf("%s: %w", l.name, err)
		}
	}
	if d := c.LeaderTTL.Duration; d != 0 && (d < 2*time.Second || d%time.Second != 0) {
		return fmt.Errorf("leaderTTL: want whole seconds, at least 2s, got %s", d)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"etcd.dialTimeout", c.Etcd.DialTimeout.Duration}, {"caReloadInterval", c.CAReloadInterval.Duration}, {"signing.lifetime", c.Signing.Lifetime.Duration}} {
		if d.v < 0 {
			return fmt.Errorf("%s: want a positive duration, got %s", d.name, d.v)
		}
	}
	return c.validateSigning() // validate.go
}

// httpKey is the key the file used for the HTTP listener.
func (c *FederatorConfig) httpKey() string {
	if c.Listen.Admin != "" {
		return "listen.admin"
	}
	return "listen.http"
}

func (c *FederatorConfig) vipRanges() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range c.VIPRanges {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("vipRanges[%d]: %q is not a CIDR prefix like 10.200.0.0/16", i, s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func parsePortRange(s string) (federator.PortRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, errA := strconv.ParseUint(lo, 10, 16)
	b, errB := strconv.ParseUint(hi, 10, 16)
	if !ok || errA != nil || errB != nil || a == 0 || a > b {
		return federator.PortRange{}, fmt.Errorf("want min-max within 1-65535, like 30000-32767, got %q", s)
	}
	return federator.PortRange{Min: uint16(a), Max: uint16(b)}, nil
}

func (c *GatewayConfig) defaults() {
	c.Identity.defaults()
	if c.Listen == "" {
		c.Listen = DefaultGatewayQUIC
	}
	if c.HTTP == "" {
		c.HTTP = DefaultGatewayHTTP
	}
	if c.Instance == "" {
		h, _ := os.Hostname()
		h, _, _ = strings.Cut(strings.ToLower(h), ".")
		c.Instance = h
	}
	if len(c.Advertise) == 0 {
		if host, _, err := net.SplitHostPort(c.Listen); err == nil && host != "" {
			c.Advertise = []string{c.Listen}
		}
	}
}

func (c *GatewayConfig) validate() error {
	if err := c.ClientConfig.validate(); err != nil {
		return err
	}
	if !names.IsDNSLabel(c.Instance) {
		return fmt.Errorf("instance: %q is not a DNS label (%s)", c.Instance, dnsLabelRule)
	}
	if err := checkHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := checkHostPort(c.HTTP); err != nil {
		return fmt.Errorf("%s: %w", httpKey(c.Admin), err)
	}
	if len(c.Advertise) == 0 {
		return fmt.Errorf("advertise: required when listen (%s) names no host", c.Listen)
	}
	for i, a := range c.Advertise {
		if host, _, err := net.SplitHostPort(a); err != nil || host == "" || checkHostPort(a) != nil {
			return fmt.Errorf("advertise[%d]: want host:port with a host peers can reach, got %q", i, a)
		}
	}
	switch c.Egress.Mode {
	case "", "addresses", "ports":
	default:
		return fmt.Errorf("egress.mode: want addresses or ports, got %q", c.Egress.Mode)
	}
	if c.ShutdownGrace.Duration < 0 {
		return fmt.Errorf("shutdownGrace: want a positive duration, got %s", c.ShutdownGrace.Duration)
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if err := c.gatewayConfig().Validate(); err != nil {
		return fmt.Errorf("gateway settings: %w", err)
	}
	return nil
}

// httpKey is the key a gateway or DNS shim file used for the HTTP
// listener.
func httpKey(deprecated string) string {
	if deprecated != "" {
		return "admin"
	}
	return "http"
}

// validate names the field of the first bad limit.
func (l *GatewayLimits) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"headerTimeout", l.HeaderTimeout.Duration}, {"dialTimeout", l.DialTimeout.Duration},
		{"flowIdleTimeout", l.FlowIdleTimeout.Duration}, {"keepAlivePeriod", l.KeepAlivePeriod.Duration},
		{"idleTimeout", l.IdleTimeout.Duration}, {"reverifyInterval", l.ReverifyInterval.Duration},
		{"replaceGrace", l.ReplaceGrace.Duration},
	} {
		if d.v < 0 {
			return fmt.Errorf("limits.%s: want a positive duration (or leave it out for the default), got %s", d.name, d.v)
		}
	}
	for _, n := range []struct {
		name     string
		v, limit int64
	}{
		{"maxHeaderSize", int64(l.MaxHeaderSize), tunnel.MaxFrameSize},
		{"maxStreamsPerPeer", l.MaxStreamsPerPeer, 1 << 60},
		{"maxAttempts", int64(l.MaxAttempts), 1 << 20},
	} {
		if n.v < 0 || n.v > n.limit {
			return fmt.Errorf("limits.%s: want a whole number 1-%d (or leave it out for the default), got %d", n.name, n.limit, n.v)
		}
	}
	ka, idle := l.KeepAlivePeriod.Duration, l.IdleTimeout.Duration
	if ka == 0 {
		ka = 500 * time.Millisecond
	}
	if idle == 0 {
		idle = 2500 * time.Millisecond
	}
	if ka >= idle {
		return fmt.Errorf("limits.keepAlivePeriod (%s) must be below limits.idleTimeout (%s)", ka, idle)
	}
	return nil
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
	return nil
}

// checkHostPort accepts host:port and :port with a numeric port.
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port or :port, like 127.0.0.1:7443, got %q", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port not in 0-65535", s)
	}
	return nil
}
