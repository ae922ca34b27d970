package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// openStreamOn opens a flow on conn, a connection to cluster's gateway:
// writing the header and reading the response take at most HeaderTimeout
// together, so a peer that never answers costs one HeaderTimeout; a
// connection without stream credit fails at once (errStreamCredit). ctx or abandon ending (the gateway stops, the instance
// went silent or left the catalog) cuts the attempt short. Any error means
// no byte of the client reached a backend; a non-OK response is a *refusal.
func (g *Gateway) openStreamOn(ctx, abandon context.Context, conn *quic.Conn, cluster string, t egressTarget, src flowSource) (*quic.Stream, error) {
	deadline := time.Now().Add(g.cfg.HeaderTimeout)
	stream, err := g.openStream(ctx, abandon, conn)
	if err != nil {
		return nil, fmt.Errorf("open stream to %s: %w", cluster, err)
	}
	// The stream's own deadline bounds the header and the response; no
	// context (and its timer) is needed for that.
	_ = stream.SetDeadline(deadline)
	// ctx or abandon ending cuts the wait for the response short. Once the
	// response is read, they no longer touch the stream.
	var (
		abortMu sync.Mutex
		settled bool
	)
	abort := func() {
		abortMu.Lock()
		defer abortMu.Unlock()
		if !settled {
			_ = stream.SetDeadline(time.Now())
		}
	}
	stopCtx := context.AfterFunc(ctx, abort)
	defer stopCtx()
	stopAbandon := context.AfterFunc(abandon, abort)
	defer stopAbandon()
	h := &causewayv1.StreamHeader{
		Version:        tunnel.HeaderVersion,
		Namespace:      t.key.Namespace,
		Service:        t.key.Name,
		Port:           t.port,
		Protocol:       causewayv1.Protocol_PROTOCOL_TCP,
		SourceCluster:  g.cfg.Cluster,
		SourceAddress:  src.addr,
		SourceIdentity: src.identity,
		DeadlineUnixMs: deadline.UnixMilli(),
		AppProtocol:    t.appProtocol,
	}
	if err := tunnel.WriteFrame(stream, h); err != nil {
		stream.CancelRead(tunnel.CodeProtocolError)
		stream.CancelWrite(tunnel.CodeProtocolError)
		if r := overloadedRefusal(err); r != nil {
			return nil, r
		}
		return nil, fmt.Errorf("send header to %s: %w", cluster, err)
	}
	resp, err := tunnel.ReadResponse(stream, g.cfg.MaxHeaderSize)
	abortMu.Lock()
	settled = true
	abortMu.Unlock()
	if cause := abandonedCause(ctx, abandon); cause != nil {
		// The attempt was abandoned: the deadline set by abort cut the
		// read, or the response raced it. Give up either way, as a
		// cancellation, which says nothing about the peer's health.
		err = fmt.Errorf("attempt abandoned: %w", cause)
	}
	if err != nil {
		stream.CancelRead(tunnel.CodeProtocolError)
		stream.CancelWrite(tunnel.CodeProtocolError)
		if r := overloadedRefusal(err); r != nil {
			return nil, r
		}
		return nil, fmt.Errorf("read response of %s: %w", cluster, err)
	}
	if resp.GetCode() != causewayv1.StreamCode_STREAM_CODE_OK {
		stream.CancelRead(tunnel.CodeFlowReset)
		stream.CancelWrite(tunnel.CodeFlowReset)
		return nil, &refusal{resp.GetCode(), resp.GetMessage()}
	}
	_ = stream.SetDeadline(time.Time{})
	return stream, nil
}

// flowSource is the client of a flow as the stream header names it.
type flowSource struct {
	addr     string // ip:port, for logs; empty on L7 streams
	identity string // the client's SPIFFE ID (sourceIdentity); empty: anonymous
}

// errStreamCredit says the peer connection's stream credit is used up:
// the peer's MaxIncomingStreams flows are open on it. The flow fails fast
// to the next candidate instead of waiting for a slot, so flows held open
// by some clients never make others wait; it says nothing about the
// peer's health (no outlier failure).
var errStreamCredit = errors.New("the peer connection's stream credit is used up")

// openStream opens a stream on conn without waiting: when the peer's
// stream limit is reached it returns errStreamCredit at once.
func (g *Gateway) openStream(ctx, abandon context.Context, conn *quic.Conn) (*quic.Stream, error) {
	// An attempt abandoned already sends no header.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if abandon.Err() != nil {
		return nil, context.Canceled
	}
	stream, err := conn.OpenStream()
	if _, limited := errors.AsType[*quic.StreamLimitReachedError](err); limited {
		g.limitRefused(limitStreamCredit, "addr", conn.RemoteAddr().String())
		return nil, errStreamCredit
	}
	return stream, err
}

// overloadedRefusal maps a reset with CodeOverloaded from the peer (its
// per-peer caps refused the stream before reading the header) to the
// OVERLOADED refusal; nil for any other error.
func overloadedRefusal(err error) *refusal {
	var se *quic.StreamError
	if errors.As(err, &se) && se.Remote && se.ErrorCode == tunnel.CodeOverloaded {
		return &refusal{causewayv1.StreamCode_STREAM_CODE_OVERLOADED, "the peer gateway is at its limits for this cluster"}
	}
	return nil
}

// abandonedCause returns why an attempt was abandoned: ctx or abandon
// ended (a deadline of ctx is a timeout, not an abandonment), or nil.
func abandonedCause(ctx, abandon context.Context) error {
	if ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return context.Cause(ctx)
	}
	if abandon.Err() != nil {
		return context.Canceled
	}
	return nil
}
