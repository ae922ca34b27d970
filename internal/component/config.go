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
	"github.com/causeway-mesh/causeway/internal/names"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// DefaultDomain is the clusterset domain when a configuration names none.
const DefaultDomain = "clusterset.local"

// Defaults of the listeners.
const (
	DefaultFederatorGRPC      = ":7443"
	DefaultFederatorBootstrap = ":7444"
	DefaultFederatorAdmin     = ":9090"
	DefaultGatewayQUIC        = ":4433"
	DefaultGatewayAdmin       = ":9091"
	DefaultDNSListen          = ":5353"
	DefaultDNSAdmin           = ":9092"
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
	if !names.IsDNSLabel(id.Cluster) {
		return fmt.Errorf("cluster %q is not a DNS label", id.Cluster)
	}
	if _, err := certs.NewID(id.TrustDomain(), "x"); err != nil {
		return fmt.Errorf("domain %q: %w", id.Domain, err)
	}
	return nil
}

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
	// Admin serves /metrics, /healthz, /readyz over HTTP. Default :9090.
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
	for _, f := range []struct{ name, v string }{
		{"federator", c.Federator}, {"bootstrap", c.Bootstrap}, {"caFile", c.CAFile}, {"tokenFile", c.TokenFile},
	} {
		if f.v == "" {
			return fmt.Errorf("%s is required", f.name)
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
	// Admin serves /metrics, /healthz, /readyz, /explain. Default :9091.
	Admin string `json:"admin,omitempty"`
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
	// Admin serves /metrics, /healthz, /readyz. Default :9092.
	Admin string `json:"admin,omitempty"`
	// TTL of positive answers (default 5s).
	TTL metav1.Duration `json:"ttl,omitempty"`
}

// LoadFederatorConfig reads, defaults and validates a federator file.
func LoadFederatorConfig(path string) (*FederatorConfig, error) {
	c := &FederatorConfig{}
	if err := load(path, c); err != nil {
		return nil, err
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
	if err := load(path, c); err != nil {
		return nil, err
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
	if err := load(path, c); err != nil {
		return nil, err
	}
	c.defaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("dnsshim config %s: %w", path, err)
	}
	return c, nil
}

func load(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

func (c *FederatorConfig) defaults() {
	c.Identity.defaults()
	if c.Listen.GRPC == "" {
		c.Listen.GRPC = DefaultFederatorGRPC
	}
	if c.Listen.Bootstrap == "" {
		c.Listen.Bootstrap = DefaultFederatorBootstrap
	}
	if c.Listen.Admin == "" {
		c.Listen.Admin = DefaultFederatorAdmin
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
		return errors.New("etcd.endpoints: at least one is required")
	}
	if c.CADir == "" {
		return errors.New("caDir is required (create it with `causeway certs init`)")
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
			return fmt.Errorf("exports.kubernetes.gatewayService %q: want namespace/name", k.GatewayService)
		}
	}
	if c.Signing.JoinTokensFile == "" && c.Signing.TokenReview == nil {
		return errors.New("signing: set joinTokensFile or tokenReview, or no component can obtain a certificate")
	}
	if c.Signing.TokenReview != nil && c.Exports.Kubernetes == nil {
		return errors.New("signing.tokenReview needs exports.kubernetes (the apiserver that reviews tokens)")
	}
	for _, l := range []struct{ name, v string }{
		{"listen.grpc", c.Listen.GRPC}, {"listen.bootstrap", c.Listen.Bootstrap}, {"listen.admin", c.Listen.Admin},
	} {
		if err := checkHostPort(l.v); err != nil {
			return fmt.Errorf("%s: %w", l.name, err)
		}
	}
	if d := c.LeaderTTL.Duration; d != 0 && (d < 2*time.Second || d%time.Second != 0) {
		return fmt.Errorf("leaderTTL %s: want whole seconds, at least 2s", d)
	}
	return c.validateSigning() // validate.go
}

func (c *FederatorConfig) vipRanges() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.VIPRanges {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("vipRanges: %w", err)
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
		return federator.PortRange{}, fmt.Errorf("%q: want min-max within 1-65535", s)
	}
	return federator.PortRange{Min: uint16(a), Max: uint16(b)}, nil
}

func (c *GatewayConfig) defaults() {
	c.Identity.defaults()
	if c.Listen == "" {
		c.Listen = DefaultGatewayQUIC
	}
	if c.Admin == "" {
		c.Admin = DefaultGatewayAdmin
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
		return fmt.Errorf("instance %q is not a DNS label", c.Instance)
	}
	if err := checkHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := checkHostPort(c.Admin); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if len(c.Advertise) == 0 {
		return fmt.Errorf("advertise: required when listen (%s) names no host", c.Listen)
	}
	if err := c.gatewayConfig().Validate(); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	for _, a := range c.Advertise {
		if host, _, err := net.SplitHostPort(a); err != nil || host == "" || checkHostPort(a) != nil {
			return fmt.Errorf("advertise %q: want host:port", a)
		}
	}
	return nil
}

func (c *DNSShimConfig) defaults() {
	c.Identity.defaults()
	if c.Listen == "" {
		c.Listen = DefaultDNSListen
	}
	if c.Admin == "" {
		c.Admin = DefaultDNSAdmin
	}
}

func (c *DNSShimConfig) validate() error {
	if err := c.ClientConfig.validate(); err != nil {
		return err
	}
	if err := checkHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := checkHostPort(c.Admin); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if c.TTL.Duration < 0 {
		return fmt.Errorf("ttl %s is negative", c.TTL.Duration)
	}
	return nil
}

// checkHostPort accepts host:port and :port with a numeric port.
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port not in 0-65535", s)
	}
	return nil
}
