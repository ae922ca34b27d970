package gateway

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/authz"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// refusal is a non-OK stream response.
type refusal struct {
	code causewayv1.StreamCode
	msg  string
}

func (r *refusal) Error() string { return r.code.String() + ": " + r.msg }

// refusalCode returns the StreamResponse code of a flow refused by a peer
// gateway (STREAM_CODE_UNSPECIFIED if err is no refusal). Every refusal
// comes before any byte reached a backend, so the flow may move to the
// next candidate; DRAINING (the peer is shutting down) and DIAL_FAILED
// or NO_ENDPOINTS (its backends) say something different about the peer
// than a transport error does, which outlier detection may care about.
func refusalCode(err error) causewayv1.StreamCode {
	var r *refusal
	if errors.As(err, &r) {
		return r.code
	}
	return causewayv1.StreamCode_STREAM_CODE_UNSPECIFIED
}

// handleIngress serves one stream opened by the gateway of cluster peer
// (labelOther if not a member), authenticated as peerID, admitted by
// grant (whose header charge it releases once the header is read).
// Whatever goes wrong ends this stream only: a response code, or a reset.
func (g *Gateway) handleIngress(ctx context.Context, stream *quic.Stream, peer string, peerID certs.ID, grant *streamGrant) {
	start := time.Now()
	fm := g.metrics.ingress
	fm.active.Inc()
	defer fm.active.Dec()
	service, result := labelOther, resultError
	defer func() { g.metrics.streams.inc("ingress", service, peer, result) }()

	_ = stream.SetReadDeadline(start.Add(g.cfg.HeaderTimeout))
	h, err := tunnel.ReadHeader(stream, g.cfg.MaxHeaderSize)
	grant.headerDone()
	if err != nil {
		g.log.Debug("bad stream header", "peer", peerID.String(), "err", err)
		g.refuse(stream, &refusal{causewayv1.StreamCode_STREAM_CODE_BAD_HEADER, err.Error()}, tunnel.CodeProtocolError)
		return
	}
	_ = stream.SetReadDeadline(time.Time{})

	v := g.src.View()
	service = serviceLabel(v, catalog.ServiceKey{Namespace: h.GetNamespace(), Name: h.GetService()})
	if h.GetAppProtocol() != "" {
		x, _, ref := g.checkIngress(v, h, peerID)
		if ref != nil {
			result = resultRefused
			g.log.Debug("L7 stream refused", "peer", peerID.String(), "service", service, "code", ref.code.String(), "err", ref.msg)
			g.refuse(stream, ref, tunnel.CodeFlowReset)
			return
		}
		result = g.handleIngressStream(stream, h, x, peerID)
		fm.duration.Observe(time.Since(start).Seconds())
		return
	}
	backend, ref := g.admitIngress(ctx, v, h, peerID)
	if ref != nil {
		result = resultRefused
		g.log.Debug("stream refused", "peer", peerID.String(), "service", service, "code", ref.code.String(), "err", ref.msg)
		g.refuse(stream, ref, tunnel.CodeFlowReset)
		return
	}
	_ = stream.SetWriteDeadline(time.Now().Add(g.cfg.HeaderTimeout))
	if err := tunnel.WriteFrame(stream, &causewayv1.StreamResponse{Code: causewayv1.StreamCode_STREAM_CODE_OK}); err != nil {
		resetFlow(backend, stream, tunnel.CodeProtocolError)
		return
	}
	_ = stream.SetWriteDeadline(time.Time{})
	stop := watchIdle(backend, g.cfg.FlowIdleTimeout, func() { resetFlow(backend, stream, tunnel.CodeFlowReset) })
	up, down := pipe(backend, stream, g.cfg.HalfClosedTimeout)
	stop()
	result = resultOK
	fm.bytes.Add(float64(down + up))
	fm.duration.Observe(time.Since(start).Seconds())
}

// resetFlow ends a flow both ways at once: the stream is reset with code
// and the TCP leg closed with RST.
func resetFlow(tcp *net.TCPConn, stream *quic.Stream, code quic.StreamErrorCode) {
	stream.CancelWrite(code)
	stream.CancelRead(code)
	_ = tcp.SetLinger(0)
	_ = tcp.Close()
}

// maxRefusalMessage caps the message of a refusal, in bytes.
const maxRefusalMessage = 256

// refuse answers a stream with a refusal, closes its send side and stops
// reading it with code (STOP_SENDING).
func (g *Gateway) refuse(stream *quic.Stream, r *refusal, code quic.StreamErrorCode) {
	msg := r.msg
	if len(msg) > maxRefusalMessage { // it may quote the peer's header
		msg = strings.ToValidUTF8(msg[:maxRefusalMessage], "") + "…"
	}
	_ = stream.SetWriteDeadline(time.Now().Add(g.cfg.HeaderTimeout))
	if err := tunnel.WriteFrame(stream, &causewayv1.StreamResponse{Code: r.code, Message: msg}); err != nil {
		stream.CancelWrite(code)
	} else {
		_ = stream.Close()
	}
	stream.CancelRead(code)
}

// admitIngress checks a stream header (checkIngress), authorizes the flow
// (authorizeFlow) and dials a ready local endpoint.
func (g *Gateway) admitIngress(ctx context.Context, v *catalog.View, h *causewayv1.StreamHeader, peerID certs.ID) (*net.TCPConn, *refusal) {
	x, p, ref := g.checkIngress(v, h, peerID)
	if ref != nil {
		return nil, ref
	}
	if ref := g.authorizeFlow(v, h, p); ref != nil {
		return nil, ref
	}
	conn, err := g.dialLocal(ctx, x, h.GetPort())
	if err != nil {
		var r *refusal
		if errors.As(err, &r) {
			return nil, r
		}
		return nil, &refusal{causewayv1.StreamCode_STREAM_CODE_DIAL_FAILED, err.Error()}
	}
	return conn, nil
}

// checkIngress checks a stream header against the peer identity, the
// gateway's state and the catalog v, and returns this cluster's export of
// the service and the source principal (checkClaim).
func (g *Gateway) checkIngress(v *catalog.View, h *causewayv1.StreamHeader, peerID certs.ID) (*causewayv1.ExportRecord, authz.Principal, *refusal) {
	src, ok := v.Cluster(h.GetSourceCluster())
	if !ok || src.GetTrustDomain() != peerID.TrustDomain {
		return nil, authz.Principal{}, &refusal{causewayv1.StreamCode_STREAM_CODE_FORBIDDEN,
			"source cluster " + h.GetSourceCluster() + " does not match peer identity " + peerID.String()}
	}
	p, ref := g.checkClaim(v, h, peerID.TrustDomain)
	if ref != nil {
		return nil, p, ref
	}
	if g.isDraining() {
		return nil, p, &refusal{causewayv1.StreamCode_STREAM_CODE_DRAINING, "gateway " + g.cfg.Cluster + " is draining"}
	}
	key := catalog.ServiceKey{Namespace: h.GetNamespace(), Name: h.GetService()}
	x, ok := v.Export(key, g.cfg.Cluster)
	if !ok {
		if len(v.Exports(key)) == 0 {
			return nil, p, &refusal{causewayv1.StreamCode_STREAM_CODE_UNKNOWN_SERVICE, key.String() + " is not exported anywhere"}
		}
		return nil, p, &refusal{causewayv1.StreamCode_STREAM_CODE_NOT_EXPORTED, key.String() + " is not exported by " + g.cfg.Cluster}
	}
	return x, p, nil
}
