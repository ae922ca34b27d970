package tunnel

import (
	"fmt"
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
	// CodeOverloaded resets a stream, before any response, that the
	// ingress gateway refuses because the peer cluster is over one of its
	// per-peer limits (streams, half-read headers). It means what the
	// response code OVERLOADED means: nothing reached a backend.
	CodeOverloaded quic.StreamErrorCode = 0x4
)

// Connection close codes.
const (
	// ConnCodeNoError closes a connection on purpose (shutdown, re-dial).
	ConnCodeNoError quic.ApplicationErrorCode = 0x0
	// ConnCodeUntrusted closes an accepted connection whose peer's
	// certificate no longer verifies (its CA was dropped, or it expired).
	ConnCodeUntrusted quic.ApplicationErrorCode = 0x1
	// ConnCodeOverloaded closes an accepted connection at once because its
	// peer cluster already holds as many connections as it may.
	ConnCodeOverloaded quic.ApplicationErrorCode = 0x2
)

// Config holds the QUIC transport knobs. The zero value is valid.
type Config struct {
	// KeepAlivePeriod is how long after the last packet received a
	// connection sends a PING. If zero, defaults to 500ms.
	KeepAlivePeriod time.Duration
	// IdleTimeout closes a connection whose peer went silent, which is how
	// a dead peer is detected. QUIC counts it from the first ack-eliciting
	// packet sent after the last packet received (at the latest the
	// keep-alive), so a dead peer is noticed within KeepAlivePeriod +
	// IdleTimeout. If zero, defaults to 2.5s (3s with the keep-alive).
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the handshake. If zero, defaults to 5s.
	HandshakeTimeout time.Duration
	// MaxIncomingStreams caps concurrent streams (tunneled flows) a peer may
	// open on one connection; a peer over the limit waits for a stream slot
	// (bounded by its HeaderTimeout). If zero, defaults to
	// DefaultMaxIncomingStreams.
	MaxIncomingStreams int64
	// MaxStreamReceiveWindow is the per-stream flow-control window.
	// If zero, defaults to 8 MiB.
	MaxStreamReceiveWindow uint64
	// MaxConnectionReceiveWindow is the per-connection window; it must be
	// well above the stream window. If zero, defaults to 64 MiB.
	MaxConnectionReceiveWindow uint64
}

// DefaultMaxIncomingStreams is the default stream limit per connection:
// above the 10,000 concurrent flows one peer must carry (bench target).
const DefaultMaxIncomingStreams = 16384

// maxStreamLimit is the largest stream count QUIC can express (RFC 9000).
const maxStreamLimit = 1 << 60

// Validate reports the first problem of c (zero fields are valid).
func (c Config) Validate() error {
	switch {
	case c.KeepAlivePeriod < 0, c.IdleTimeout < 0, c.HandshakeTimeout < 0:
		return fmt.Errorf("tunnel config: negative keep-alive %s, idle %s or handshake timeout %s",
			c.KeepAlivePeriod, c.IdleTimeout, c.HandshakeTimeout)
	case c.MaxIncomingStreams < 0 || c.MaxIncomingStreams > maxStreamLimit:
		return fmt.Errorf("tunnel config: max incoming streams %d not in 0..2^60", c.MaxIncomingStreams)
	}
	d := c.WithDefaults()
	if d.KeepAlivePeriod >= d.IdleTimeout {
		return fmt.Errorf("tunnel config: keep-alive period %s must be below idle timeout %s", d.KeepAlivePeriod, d.IdleTimeout)
	}
	return nil
}

// WithDefaults returns c with zero fields replaced by defaults.
func (c Config) WithDefaults() Config {
	if c.KeepAlivePeriod == 0 {
		c.KeepAlivePeriod = 500 * time.Millisecond
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2500 * time.Millisecond
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.MaxIncomingStreams == 0 {
		c.MaxIncomingStreams = DefaultMaxIncomingStreams
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
