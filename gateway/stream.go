package gateway

import (
	"context"
	"fmt"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// openStream opens a flow to cluster's gateway and waits for its answer.
// Any error means no byte of the client reached a backend.
func (g *Gateway) openStream(ctx context.Context, cluster string, t egressTarget, source string) (*quic.Stream, error) {
	conn, err := g.conn(ctx, cluster)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(g.cfg.HeaderTimeout)
	octx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	stream, err := conn.OpenStreamSync(octx)
	if err != nil {
		return nil, fmt.Errorf("open stream to %s: %w", cluster, err)
	}
	_ = stream.SetDeadline(deadline)
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
