package federator

import (
	"fmt"
	"sync"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// DefaultWatchStreamsPerIdentity caps concurrent Catalog.Watch streams of
// one SPIFFE ID when WatchLimitConfig.PerIdentity is zero. Every instance
// of a component shares its identity (all gateways are
// spiffe://<cluster>/gateway; a DNS shim per node shares /dnsshim), so the
// cap must exceed the number of instances: raise it above 1024 nodes.
const DefaultWatchStreamsPerIdentity = 1024

// watchMethod is the full gRPC method name of Catalog.Watch.
var watchMethod = "/" + causewayv1.Catalog_ServiceDesc.ServiceName + "/Watch"

// WatchLimitConfig configures a WatchLimiter.
type WatchLimitConfig struct {
	// PerIdentity caps concurrent Watch streams per peer SPIFFE ID. If
	// zero, DefaultWatchStreamsPerIdentity.
	PerIdentity int
	// Registerer for metrics; if nil, not registered.
	Registerer prometheus.Registerer
}

// WatchLimiter caps concurrent Catalog.Watch streams per peer identity: a
// stream beyond the cap is refused with RESOURCE_EXHAUSTED before it
// costs a snapshot, so one credential (one leaked dnsshim certificate)
// cannot hold thousands of streams that every catalog change fans out to.
// Install its StreamInterceptor on the mutual-TLS server.
type WatchLimiter struct {
	max     int
	mu      sync.Mutex // guards streams
	streams map[string]int
	refused *prometheus.CounterVec
	active  prometheus.Gauge
}

// NewWatchLimiter returns a WatchLimiter for cfg.
func NewWatchLimiter(cfg WatchLimitConfig) (*WatchLimiter, error) {
	if cfg.PerIdentity < 0 {
		return nil, fmt.Errorf("watch limit: negative cap %d", cfg.PerIdentity)
	}
	if cfg.PerIdentity == 0 {
		cfg.PerIdentity = DefaultWatchStreamsPerIdentity
	}
	l := &WatchLimiter{max: cfg.PerIdentity, streams: map[string]int{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "causeway", Subsystem: "federator",
			Name: "catalog_watch_refused_total",
			Help: "Catalog.Watch streams refused because the peer identity holds the most allowed, by the peer's component (gateway, dnsshim, admin, federator, other)."},
			[]string{"component"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "causeway", Subsystem: "federator",
			Name: "catalog_watch_limited_streams", Help: "Catalog.Watch streams counted against the per-identity cap."}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{l.refused, l.active} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("watch limit: register metrics: %w", err)
			}
		}
	}
	return l, nil
}

// StreamInterceptor counts Catalog.Watch streams per peer identity and
// refuses one beyond the cap; other methods pass through.
func (l *WatchLimiter) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if info.FullMethod != watchMethod {
			return handler(srv, ss)
		}
		id, ok := peerIdentity(ss)
		if !ok {
			return status.Error(codes.Unauthenticated, "catalog watch: no verified peer identity")
		}
		if !l.acquire(id.String()) {
			l.refused.WithLabelValues(componentLabel(id)).Inc()
			return status.Errorf(codes.ResourceExhausted, "catalog watch: %s already holds %d watch streams (the most per identity)", id, l.max)
		}
		defer l.release(id.String())
		return handler(srv, ss)
	}
}

func (l *WatchLimiter) acquire(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.streams[id] >= l.max {
		return false
	}
	l.streams[id]++
	l.active.Inc()
	return true
}

func (l *WatchLimiter) release(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.streams[id]--; l.streams[id] <= 0 {
		delete(l.streams, id)
	}
	l.active.Dec()
}

// peerIdentity is the SPIFFE ID of the stream's verified TLS peer.
func peerIdentity(ss grpc.ServerStream) (certs.ID, bool) {
	p, ok := peer.FromContext(ss.Context())
	if !ok {
		return certs.ID{}, false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return certs.ID{}, false
	}
	id, err := certs.PeerID(ti.State)
	return id, err == nil
}

// componentLabel is the bounded label of an identity's component.
func componentLabel(id certs.ID) string {
	c, _ := id.Component()
	switch c {
	case GatewayComponent, "dnsshim", AdminComponent, "federator":
		return c
	}
	return "other"
}
