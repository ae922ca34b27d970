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
// opening the stream, writing the header and reading the response take at
// most HeaderTimeout together, so a peer that never answers costs one
// HeaderTimeout. Any error means no byte of the client reached a backend;
// a non-OK response is a *refusal.
func (g *Gateway) openStreamOn(ctx context.Context, conn *quic.Conn, cluster string, t egressTarget, source string) (*quic.Stream, error) {
	deadline := time.Now().Add(g.cfg.HeaderTimeout)
	octx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	stream, err := conn.OpenStreamSync(octx)
	if err != nil {
		return nil, fmt.Errorf("open stream to %s: %w", cluster, err)
	}
	_ = stream.SetDeadline(deadline)
	// ctx ending (the instance was abandoned, the gateway stops) cuts the
	// wait for the response short. Once the response is read, it no longer
	// touches the stream.
	var (
		abortMu sync.Mutex
		settled bool
	)
	stopAbort := context.AfterFunc(octx, func() {
		abortMu.Lock()
		defer abortMu.Unlock()
		if !settled {
			_ = stream.SetDeadline(time.Now())
		}
	})
	defer stopAbort()
	h := &causewayv1.StreamHeader{
		Version:        tunnel.HeaderVersion,
		Namespace:      t.key.Namespace,
		Service:        t.key.Name,
		Port:           t.port,
		Protocol:       causewayv1.Protocol_PROTOCOL_TCP,
		SourceCluster:  g.cfg.Cluster,
		SourceAddress:  source,
		DeadlineUnixMs: deadline.UnixMilli(),
	}
	if err := tunnel.WriteFrame(stream, h); err != nil {
		stream.CancelRead(tunnel.CodeProtocolError)
		stream.CancelWrite(tunnel.CodeProtocolError)
		return nil, fmt.Errorf("send header to %s: %w", cluster, err)
	}
	resp, err := tunnel.ReadResponse(stream, g.cfg.MaxHeaderSize)
	abortMu.Lock()
	settled = true
	abortMu.Unlock()
	if octx.Err() != nil && !errors.Is(context.Cause(octx), context.DeadlineExceeded) {
		// The attempt was abandoned (ctx ended): the deadline set above cut
		// the read, or the response raced it. Give up either way, as a
		// cancellation, which says nothing about the peer's health.
		err = fmt.Errorf("attempt abandoned: %w", context.Cause(octx))
	}
	if err != nil {
		stream.CancelRead(tunnel.CodeProtocolError)
		stream.CancelWrite(tunnel.CodeProtocolError)
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
