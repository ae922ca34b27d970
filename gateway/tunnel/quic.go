package tunnel

import (
	"time"

	"github.com/quic-go/quic-go"
)

// Stream error codes used to reset a stream (RESET_STREAM / STOP_SENDING).
const (
	// CodeFlowReset mirrors a TCP RST of one side of the flow.
	CodeFlowReset quic.StreamErrorCode = 0x1
	// CodeProtocolError resets a stream whose frames could not be read.
	CodeProtocolError quic.StreamErrorCode = 0x2
	// CodeShutdown resets streams still open when a gateway stops.
	CodeShutdown quic.StreamErrorCode = 0x3
)

// Connection close codes.
const (
	// ConnCodeNoError closes a connection on purpose (shutdown, re-dial).
	ConnCodeNoError quic.ApplicationErrorCode = 0x0
)

// Config holds the QUIC transport knobs. The zero value is valid.
type Config struct {
	// KeepAlivePeriod is how often an idle connection sends a PING.
	// If zero, defaults to 1s.
	KeepAlivePeriod time.Duration
	// IdleTimeout closes a connection that received nothing for this long,
	// which is how a dead peer is detected. If zero, defaults to 3s.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the handshake. If zero, defaults to 5s.
	HandshakeTimeout time.Duration
	// MaxIncomingStreams caps concurrent streams a peer may open on one
	// connection. If zero, defaults to 4096.
	MaxIncomingStreams int64
	// MaxStreamReceiveWindow is the per-stream flow-control window.
	// If zero, defaults to 8 MiB.
	MaxStreamReceiveWindow uint64
	// MaxConnectionReceiveWindow is the per-connection window; it must be
	// well above the stream window. If zero, defaults to 64 MiB.
	MaxConnectionReceiveWindow uint64
}

// WithDefaults returns c with zero fields replaced by defaults.
func (c Config) WithDefaults() Config {
	if c.KeepAlivePeriod == 0 {
		c.KeepAlivePeriod = time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 3 * time.Second
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.MaxIncomingStreams == 0 {
		c.MaxIncomingStreams = 4096
	}
	if c.MaxStreamReceiveWindow == 0 {
		c.MaxStreamReceiveWindow = 8 << 20
	}
	if c.MaxConnectionReceiveWindow == 0 {
		c.MaxConnectionReceiveWindow = 64 << 20
	}
	return c
}

// QUIC returns the quic-go configuration for c.
func (c Config) QUIC() *quic.Config {
	c = c.WithDefaults()
	return &quic.Config{
		HandshakeIdleTimeout:           c.HandshakeTimeout,
		MaxIdleTimeout:                 c.IdleTimeout,
		KeepAlivePeriod:                c.KeepAlivePeriod,
		MaxIncomingStreams:             c.MaxIncomingStreams,
		MaxIncomingUniStreams:          -1,
		InitialStreamReceiveWindow:     512 << 10,
		MaxStreamReceiveWindow:         c.MaxStreamReceiveWindow,
		InitialConnectionReceiveWindow: 1 << 20,
		MaxConnectionReceiveWindow:     c.MaxConnectionReceiveWindow,
	}
}
