package component

import (
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FederatorLimitsConfig bounds what one client can hold of the
// federator's gRPC listeners (Catalog and Admin over mutual TLS, and the
// bootstrap listener of Certs.Sign, which anyone can reach).
type FederatorLimitsConfig struct {
	// HandshakeTimeout closes a connection that has not finished its TLS
	// and HTTP/2 handshake within it (grpc-go's default is 120s). If zero,
	// 5s.
	HandshakeTimeout metav1.Duration `json:"handshakeTimeout,omitempty"`
	// WatchStreamsPerIdentity caps concurrent Catalog.Watch streams of one
	// SPIFFE ID (all instances of a component share it: raise it above the
	// number of gateway or DNS shim instances). If zero, 1024.
	WatchStreamsPerIdentity int `json:"watchStreamsPerIdentity,omitempty"`
	// StreamsPerConnection caps concurrent calls on one connection (HTTP/2
	// MAX_CONCURRENT_STREAMS; a component uses two or three). If zero, 100.
	StreamsPerConnection uint32 `json:"streamsPerConnection,omitempty"`
}

// Keepalive of the federator's gRPC servers: an idle connection is pinged
// after grpcKeepaliveTime and closed when the ping is not answered within
// grpcKeepaliveTimeout; a connection without calls for grpcMaxIdle is
// closed; clients may ping at most every grpcMinPingInterval. So the
// announcement of a gateway whose host vanished ends (its record goes, and
// a replacement may take the instance name) within about 40 s, not
// whenever TCP notices.
const (
	grpcKeepaliveTime    = 30 * time.Second
	grpcKeepaliveTimeout = 10 * time.Second
	grpcMaxIdle          = 5 * time.Minute
	grpcMinPingInterval  = 10 * time.Second
)

func (l *FederatorLimitsConfig) validate() error {
	if l.HandshakeTimeout.Duration < 0 {
		return fmt.Errorf("limits.handshakeTimeout: want a positive duration, got %s", l.HandshakeTimeout.Duration)
	}
	if l.WatchStreamsPerIdentity < 0 {
		return fmt.Errorf("limits.watchStreamsPerIdentity: want a positive number, got %d", l.WatchStreamsPerIdentity)
	}
	return nil
}

// handshakeTimeout is limits.handshakeTimeout or its default.
func (l *FederatorLimitsConfig) handshakeTimeout() time.Duration {
	if d := l.HandshakeTimeout.Duration; d > 0 {
		return d
	}
	return 5 * time.Second
}

// grpcServerOptions are the options both federator gRPC servers share:
// the handshake timeout, keep-alive enforcement and the per-connection
// stream cap.
func (l *FederatorLimitsConfig) grpcServerOptions() []grpc.ServerOption {
	streams := l.StreamsPerConnection
	if streams == 0 {
		streams = 100
	}
	return []grpc.ServerOption{
		grpc.ConnectionTimeout(l.handshakeTimeout()),
		grpc.MaxConcurrentStreams(streams),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: grpcKeepaliveTime, Timeout: grpcKeepaliveTimeout, MaxConnectionIdle: grpcMaxIdle}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: grpcMinPingInterval, PermitWithoutStream: true}),
	}
}
