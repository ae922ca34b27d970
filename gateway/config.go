package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/causeway-mesh/causeway/gateway/authz"
	"github.com/causeway-mesh/causeway/gateway/l7route"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Gateway. Zero fields take the documented defaults.
type Config struct {
	// Cluster is this gateway's cluster. Required.
	Cluster string
	// L7 are the limits of ports served at L7 (appProtocol http, h2c,
	// grpc).
	L7 L7Config
	// Routes supplies the L7 routes (HTTPRoute and GRPCRoute semantics,
	// gateway/l7route); nil serves every L7 port without routes (each
	// request to the addressed service, in locality order).
	Routes RouteSource
	// RouteStatus, if set, receives the outcome of every validation of
	// Routes (Kubernetes: the routes' status conditions).
	RouteStatus RouteStatusSink
	// Sources maps the address of each egress client to its workload
	// identity, which the gateway sends with the flow (StreamHeader
	// source_identity) or request (SourceIdentityHeader). If nil, every
	// client is the cluster's anonymous identity.
	Sources authz.SourceResolver
	// Authorization supplies the policies and rate limits ingress enforces
	// before it dials a backend (docs/authorization.md). If nil, every flow
	// and request is allowed; claimed identities are checked all the same.
	Authorization Authorizer
	// Tunnel holds the QUIC settings.
	Tunnel tunnel.Config
	// EgressMode is where egress listens: EgressAddresses (default) or
	// EgressPorts.
	EgressMode string
	// EgressBind is the host egress listens on in EgressPorts mode; empty
	// means every address.
	EgressBind string
	// MaxHeaderSize caps a stream header. If zero, 4096 bytes.
	MaxHeaderSize int
	// HeaderTimeout bounds reading a stream header or response. If zero, 5s.
	HeaderTimeout time.Duration
	// DialTimeout bounds dialing a backend or a peer. If zero, 3s.
	DialTimeout time.Duration
	// ShutdownGrace is how long open flows may finish on shutdown, while new
	// streams are answered DRAINING. If zero, 1s.
	ShutdownGrace time.Duration
	// FlowIdleTimeout closes (resets) a tunneled flow that carried no byte in
	// either direction for this long. If zero, 1h.
	FlowIdleTimeout time.Duration
	// HalfClosedTimeout resets a flow that one side has closed (FIN) once
	// it carried no byte in either direction for this long: the side that
	// closed may be gone for good, and the flow would otherwise be held
	// until FlowIdleTimeout. If zero, 60s.
	HalfClosedTimeout time.Duration
	// MaxFlowsPerSource caps the concurrent egress flows of one client
	// address (over every egress listener); a connection over it is
	// closed with RST at once. It keeps one client from using up a peer
	// connection's stream credit. If zero, DefaultMaxFlowsPerSource.
	MaxFlowsPerSource int
	// MaxPeerConns caps the QUIC connections one peer cluster (trust
	// domain) may hold to this gateway; one over it is closed at once with
	// application error 0x2. If zero, DefaultMaxPeerConns.
	MaxPeerConns int
	// MaxPeerStreams caps the streams one peer cluster may have open at
	// this gateway over all its connections; a stream over it is reset
	// with 0x4 (OVERLOADED) before its header is read. If zero,
	// DefaultMaxPeerStreams.
	MaxPeerStreams int
	// MaxPeerHeaderBytes bounds the memory of one peer cluster's streams
	// whose header is still being read: each is charged MaxHeaderSize plus
	// an estimate of its state (pendingStreamCost); a stream that would go
	// over it is reset with 0x4. If zero, DefaultMaxPeerHeaderBytes.
	MaxPeerHeaderBytes int64
	// Logger; if nil, slog.Default(). The caller names the cluster in it
	// (the wiring adds the "cluster" attribute once per process).
	Logger *slog.Logger
	// Registerer for metrics; if nil, not registered.
	Registerer prometheus.Registerer

	// MaxAttempts bounds the candidate clusters one egress flow tries
	// (the first and its transparent retries). If zero, 3.
	MaxAttempts int
	// OutlierFailures is how many consecutive failures eject a cluster
	// from egress balancing. If zero, 1.
	OutlierFailures int
	// OutlierBaseEjection is how long the first ejection lasts; each
	// further consecutive failure doubles it. If zero, 1s.
	OutlierBaseEjection time.Duration
	// OutlierMaxEjection caps an ejection. If zero, 30s.
	OutlierMaxEjection time.Duration
	// ReconnectBackoff is the wait before re-dialing a peer gateway
	// instance after a failed dial; it doubles per failure, with jitter.
	// The re-dial after a connection that lived is immediate. If zero, 100ms.
	ReconnectBackoff time.Duration
	// ReconnectBackoffMax caps ReconnectBackoff's doubling. If zero, 5s.
	ReconnectBackoffMax time.Duration
	// ReverifyInterval is how often every peer connection is checked
	// against the current trust bundles and this gateway's current
	// certificate (also done whenever the bundles change); see
	// reverify.go. If zero, 5s.
	ReverifyInterval time.Duration
	// ReplaceGrace is how long open flows may go on on a replaced
	// connection, or on an accepted one whose peer no longer verifies,
	// before it closes. If zero, 30s.
	ReplaceGrace time.Duration
	// Clock is outlier detection's time source. If nil, the system clock.
	Clock Clock
}

// RouteSource supplies the routes a gateway serves: a static file, or the
// routes a federator reads from Kubernetes. The gateway validates them
// against its catalog (l7route.Table: an invalid version never replaces
// the last good one) whenever either changes.
type RouteSource interface {
	// Routes returns the current routes; the gateway does not modify them.
	Routes() []*l7route.Route
	// Changed returns a channel closed at the next change of Routes.
	Changed() <-chan struct{}
}

// RouteStatusSink receives the per-route outcome of each validation
// (l7route.Table.Update), in the order of the routes given. It must not
// block.
type RouteStatusSink interface {
	ReportStatus(ctx context.Context, statuses []l7route.RouteStatus)
}

// L7Config bounds the HTTP requests of L7 ports.
type L7Config struct {
	// MaxHeaderBytes caps a request's or response's header (default
	// 64 KiB); a larger request header is answered 431.
	MaxHeaderBytes int
	// MaxBodyBytes caps a request body (default 0: no limit); a larger one
	// is answered 413 (at once when its Content-Length says so).
	MaxBodyBytes int64
}

// DefaultL7MaxHeaderBytes is L7Config.MaxHeaderBytes when unset.
const DefaultL7MaxHeaderBytes = 64 << 10

func (c Config) withDefaults() Config {
	if c.L7.MaxHeaderBytes == 0 {
		c.L7.MaxHeaderBytes = DefaultL7MaxHeaderBytes
	}
	if c.MaxHeaderSize == 0 {
		c.MaxHeaderSize = tunnel.DefaultMaxHeaderSize
	}
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = 5 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 3 * time.Second
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = time.Second
	}
	if c.FlowIdleTimeout == 0 {
		c.FlowIdleTimeout = time.Hour
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.HalfClosedTimeout == 0 {
		c.HalfClosedTimeout = DefaultHalfClosedTimeout
	}
	if c.MaxFlowsPerSource == 0 {
		c.MaxFlowsPerSource = DefaultMaxFlowsPerSource
	}
	if c.MaxPeerConns == 0 {
		c.MaxPeerConns = DefaultMaxPeerConns
	}
	if c.MaxPeerStreams == 0 {
		c.MaxPeerStreams = DefaultMaxPeerStreams
	}
	if c.MaxPeerHeaderBytes == 0 {
		c.MaxPeerHeaderBytes = DefaultMaxPeerHeaderBytes
	}
	if c.OutlierFailures == 0 {
		c.OutlierFailures = 1
	}
	if c.OutlierBaseEjection == 0 {
		c.OutlierBaseEjection = time.Second
	}
	if c.OutlierMaxEjection == 0 {
		c.OutlierMaxEjection = 30 * time.Second
	}
	if c.ReconnectBackoff == 0 {
		c.ReconnectBackoff = 100 * time.Millisecond
	}
	if c.ReconnectBackoffMax == 0 {
		c.ReconnectBackoffMax = 5 * time.Second
	}
	if c.ReverifyInterval == 0 {
		c.ReverifyInterval = 5 * time.Second
	}
	if c.ReplaceGrace == 0 {
		c.ReplaceGrace = 30 * time.Second
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Tunnel = c.Tunnel.WithDefaults()
	return c
}

// Validate reports the first problem of c.
func (c Config) Validate() error {
	if !names.IsDNSLabel(c.Cluster) {
		return fmt.Errorf("gateway config: cluster name %q is not a DNS label", c.Cluster)
	}
	switch c.EgressMode {
	case "", EgressAddresses, EgressPorts:
	default:
		return fmt.Errorf("gateway config: egress mode %q: want %s or %s", c.EgressMode, EgressAddresses, EgressPorts)
	}
	if c.MaxHeaderSize < 0 || c.MaxHeaderSize > tunnel.MaxFrameSize {
		return fmt.Errorf("gateway config: max header size %d not in 0..%d", c.MaxHeaderSize, tunnel.MaxFrameSize)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"header timeout", c.HeaderTimeout},
		{"dial timeout", c.DialTimeout},
		{"shutdown grace", c.ShutdownGrace},
		{"flow idle timeout", c.FlowIdleTimeout},
		{"reverify interval", c.ReverifyInterval},
		{"replace grace", c.ReplaceGrace},
		{"half-closed timeout", c.HalfClosedTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("gateway config: negative %s %s", d.name, d.v)
		}
	}
	if c.MaxAttempts < 0 || c.OutlierFailures < 0 || c.OutlierBaseEjection < 0 || c.OutlierMaxEjection < 0 ||
		c.ReconnectBackoff < 0 || c.ReconnectBackoffMax < 0 {
		return fmt.Errorf("gateway config: negative max attempts, outlier or reconnect setting")
	}
	if c.MaxFlowsPerSource < 0 || c.MaxPeerConns < 0 || c.MaxPeerStreams < 0 || c.MaxPeerHeaderBytes < 0 {
		return fmt.Errorf("gateway config: negative flow, connection, stream or header-memory limit")
	}
	if err := c.Tunnel.Validate(); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	return nil
}
