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
	"github.com/causeway-mesh/causeway/internal/lib/configfile"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultDomain is the clusterset domain when a configuration names none.
const DefaultDomain = "clusterset.local"

// Defaults of the listeners. The HTTP endpoints (metrics, health,
// explain) are unauthenticated, so by default they bind loopback only: set
// http to an address your scraper can reach (the Helm chart does, and
// limits who reaches it with its NetworkPolicy).
const (
	DefaultFederatorGRPC      = ":7443"
	DefaultFederatorBootstrap = ":7444"
	DefaultFederatorHTTP      = "127.0.0.1:9090"
	DefaultGatewayQUIC        = ":4433"
	DefaultGatewayHTTP        = "127.0.0.1:9091"
	DefaultDNSListen          = ":5353"
	DefaultDNSHTTP            = "127.0.0.1:9092"
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
	// exports), in order: the next range once one is full. Required
	// without kubernetes.
	VIPRanges []string `json:"vipRanges,omitempty"`
	// Exports says where this cluster's exports come from: exactly one of
	// static or kubernetes.
	Exports ExportsConfig `json:"exports"`
	// Signing configures Certs.Sign.
	Signing SigningConfig `json:"signing,omitempty"`
	// TrustPins pins peer clusters' trust bundles out of band: peer
	// cluster name to the SHA-256 fingerprint ("sha256:<hex>") of one of
	// its CA certificates, as `causeway join` prints it. A peer neither
	// pinned here nor trusted with `causeway clusters trust` is refused.
	TrustPins map[string]string `json:"trustPins,omitempty"`
	// Limits bound what one client can hold of the gRPC listeners
	// (config_limits.go).
	Limits FederatorLimitsConfig `json:"limits,omitempty"`
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
	// ServerName is the name etcd's certificate is verified against. If
	// empty, the endpoint's host. Set it when etcd is reached through an
	// address its certificate does not name (causeway dev's etcd:
	// etcd.causeway.internal).
	ServerName string `json:"serverName,omitempty"`
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
	// JoinTokensFile is a YAML map of join token → component, or → {component,
	// maxUses}.
	JoinTokensFile string `json:"joinTokensFile,omitempty"`
	// JoinTokenMaxUses is how many certificates a join token without its
	// own maxUses obtains (renewals with a still-valid leaf use none). If
	// zero, 10.
	JoinTokenMaxUses int `json:"joinTokenMaxUses,omitempty"`
	// JoinTokenUsesFile is where uses are counted, so a restart does not
	// reset them (replicas on one host share it). If empty, the tokens
	// file's path with ".uses" appended; its directory must be writable.
	JoinTokenUsesFile string `json:"joinTokenUsesFile,omitempty"`
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
	if c.Signing.JoinTokenMaxUses < 0 {
		return fmt.Errorf("signing.joinTokenMaxUses: want a positive number, got %d", c.Signing.JoinTokenMaxUses)
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
	for peer, fp := range c.TrustPins {
		if !names.IsDNSLabel(peer) {
			return fmt.Errorf("trustPins: cluster name %q is not a DNS label", peer)
		}
		if _, err := certs.ParseFingerprint(fp); err != nil {
			return fmt.Errorf("trustPins.%s: %w", peer, err)
		}
	}
	if err := c.Limits.validate(); err != nil { // config_limits.go
		return err
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
