package component

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/causeway-mesh/causeway/internal/app/authzfile"
	"github.com/causeway-mesh/causeway/internal/app/routefile"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

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
	// Routes is a static routes file (HTTPRoutes and GRPCRoutes of L7
	// ports, docs/traffic.md), re-read when it changes. It must load at
	// start. Empty: no routes (every L7 request goes to the addressed
	// service, in locality order).
	Routes string `json:"routes,omitempty"`
	// KubernetesRoutes reads the routes from the cluster's HTTPRoute and
	// GRPCRoute objects (Gateway API CRDs installed) and writes each
	// route's status; exclusive with Routes.
	KubernetesRoutes *KubernetesRoutesConfig `json:"kubernetesRoutes,omitempty"`
	// Authorization is a static authorization file (identities of local
	// client address ranges, AuthorizationPolicies, RateLimitPolicies,
	// default action; docs/authorization.md), re-read when it changes. It
	// must load at start. Its identities name this cluster's egress
	// clients; its policies are enforced by this gateway's ingress. Empty:
	// every client is the cluster's anonymous identity and every flow is
	// allowed.
	Authorization string `json:"authorization,omitempty"`
}

// KubernetesRoutesConfig says where a gateway reads its routes from in
// Kubernetes.
type KubernetesRoutesConfig struct {
	// Kubeconfig path; empty means in-cluster.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Namespace to read routes from; empty means every namespace.
	Namespace string `json:"namespace,omitempty"`
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
	// HalfClosedTimeout resets a flow one side has closed (FIN) once it
	// carried no byte either way for this long (60s).
	HalfClosedTimeout metav1.Duration `json:"halfClosedTimeout,omitempty"`
	// MaxFlowsPerSource caps the concurrent egress flows of one client
	// address (4096); more are closed with RST at once.
	MaxFlowsPerSource int `json:"maxFlowsPerSource,omitempty"`
	// MaxConnectionsPerPeerCluster caps the QUIC connections one peer
	// cluster may hold to this gateway (16).
	MaxConnectionsPerPeerCluster int `json:"maxConnectionsPerPeerCluster,omitempty"`
	// MaxStreamsPerPeerCluster caps the streams one peer cluster may have
	// open here over all its connections (32768).
	MaxStreamsPerPeerCluster int `json:"maxStreamsPerPeerCluster,omitempty"`
	// MaxHeaderBytesPerPeerCluster bounds the memory of one peer cluster's
	// streams whose header is still being read, bytes (16777216; each is
	// charged maxHeaderSize + 8 KiB).
	MaxHeaderBytesPerPeerCluster int64 `json:"maxHeaderBytesPerPeerCluster,omitempty"`
	// L7MaxHeaderBytes caps the header of a request or response on an L7
	// port (65536); a larger request header is answered 431.
	L7MaxHeaderBytes int `json:"l7MaxHeaderBytes,omitempty"`
	// L7MaxBodyBytes caps a request body on an L7 port (0: no limit); a
	// larger one is answered 413.
	L7MaxBodyBytes int64 `json:"l7MaxBodyBytes,omitempty"`
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
	if c.Routes != "" && c.KubernetesRoutes != nil {
		return fmt.Errorf("routes and kubernetesRoutes: give one (a static file, or the cluster's HTTPRoutes and GRPCRoutes)")
	}
	if c.Routes != "" {
		if _, err := routefile.Load(c.Routes); err != nil {
			return fmt.Errorf("routes: %w", err)
		}
	}
	if c.Authorization != "" {
		if _, err := authzfile.Load(c.Authorization, c.Cluster, c.Domain); err != nil {
			return fmt.Errorf("authorization: %w", err)
		}
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
		{"replaceGrace", l.ReplaceGrace.Duration}, {"halfClosedTimeout", l.HalfClosedTimeout.Duration},
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
		{"l7MaxHeaderBytes", int64(l.L7MaxHeaderBytes), 1 << 24},
		{"l7MaxBodyBytes", l.L7MaxBodyBytes, 1 << 50},
		{"maxStreamsPerPeer", l.MaxStreamsPerPeer, 1 << 60},
		{"maxAttempts", int64(l.MaxAttempts), 1 << 20},
		{"maxFlowsPerSource", int64(l.MaxFlowsPerSource), 1 << 30},
		{"maxConnectionsPerPeerCluster", int64(l.MaxConnectionsPerPeerCluster), 1 << 20},
		{"maxStreamsPerPeerCluster", int64(l.MaxStreamsPerPeerCluster), 1 << 30},
		{"maxHeaderBytesPerPeerCluster", l.MaxHeaderBytesPerPeerCluster, 1 << 40},
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
