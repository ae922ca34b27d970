package gateway

import (
	"fmt"
	"github.com/causeway-mesh/causeway/internal/names"
	"log/slog"
	"time"

	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Gateway. Zero fields take the documented defaults.
type Config struct {
	// Cluster is this gateway's cluster. Required.
	Cluster string
	// Tunnel holds the QUIC settings.
	Tunnel tunnel.Config
	// MaxHeaderSize caps a stream header. If zero, 4096 bytes.
	MaxHeaderSize int
	// HeaderTimeout bounds reading a stream header or response. If zero, 5s.
	HeaderTimeout time.Duration
	// DialTimeout bounds dialing a backend or a peer. If zero, 3s.
	DialTimeout time.Duration
	// ShutdownGrace is how long open flows may finish on shutdown. If zero, 1s.
	ShutdownGrace time.Duration
	// Logger; if nil, slog.Default().
	Logger *slog.Logger
	// Registerer for metrics; if nil, not registered.
	Registerer prometheus.Registerer
}

func (c Config) withDefaults() Config {
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
	if c.MaxHeaderSize < 0 || c.MaxHeaderSize > tunnel.MaxFrameSize {
		return fmt.Errorf("gateway config: max header size %d not in 0..%d", c.MaxHeaderSize, tunnel.MaxFrameSize)
	}
	return nil
}
