package gateway

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// refusal is a non-OK stream response.
type refusal struct {
	code causewayv1.StreamCode
	msg  string
}

func (r *refusal) Error() string { return r.code.String() + ": " + r.msg }

// handleIngress serves one stream opened by a peer gateway.
func (g *Gateway) handleIngress(ctx context.Context, stream *quic.Stream, peerID certs.ID) {
	start := time.Now()
	g.metrics.active.WithLabelValues("ingress").Inc()
	defer g.metrics.active.WithLabelValues("ingress").Dec()

	_ = stream.SetReadDeadline(start.Add(g.cfg.HeaderTimeout))
	h, err := tunnel.ReadHeader(stream, g.cfg.MaxHeaderSize)
	if err != nil {
		g.metrics.streams.WithLabelValues("ingress", resultError).Inc()
		g.log.Debug("bad stream header", "peer", peerID.String(), "err", err)
		g.refuse(stream, &refusal{causewayv1.StreamCode_STREAM_CODE_BAD_HEADER, err.Error()})
		return
	}
	_ = stream.SetReadDeadline(time.Time{})

	backend, ref := g.admitIngress(ctx, h, peerID)
	if ref != nil {
		g.metrics.streams.WithLabelValues("ingress", resultRefused).Inc()
		g.refuse(stream, ref)
		return
	}
	_ = stream.SetWriteDeadline(time.Now().Add(g.cfg.HeaderTimeout))
	if err := tunnel.WriteFrame(stream, &causewayv1.StreamResponse{Code: causewayv1.StreamCode_STREAM_CODE_OK}); err != nil {
		g.metrics.streams.WithLabelValues("ingress", resultError).Inc()
		_ = backend.Close()
		stream.CancelRead(tunnel.CodeFlowReset)
		return
	}
	_ = stream.SetWriteDeadline(time.Time{})
	up, down := pipe(backend, stream)
	g.metrics.bytes.WithLabelValues("ingress").Add(float64(down + up))
	g.metrics.streams.WithLabelValues("ingress", resultOK).Inc()
	g.metrics.duration.WithLabelValues("ingress").Observe(time.Since(start).Seconds())
}

// refuse answers a stream with a refusal and closes it.
func (g *Gateway) refuse(stream *quic.Stream, r *refusal) {
	_ = stream.SetWriteDeadline(time.Now().Add(g.cfg.HeaderTimeout))
	_ = tunnel.WriteFrame(stream, &causewayv1.StreamResponse{Code: r.code, Message: r.msg})
	_ = stream.Close()
	stream.CancelRead(tunnel.CodeFlowReset)
}

// admitIngress checks a stream header against the peer identity and the
// catalog and dials a ready local endpoint.
func (g *Gateway) admitIngress(ctx context.Context, h *causewayv1.StreamHeader, peerID certs.ID) (*net.TCPConn, *refusal) {
	v := g.src.View()
	src, ok := v.Cluster(h.GetSourceCluster())
	if !ok || src.GetTrustDomain() != peerID.TrustDomain {
		return nil, &refusal{causewayv1.StreamCode_STREAM_CODE_FORBIDDEN,
			"source cluster " + h.GetSourceCluster() + " does not match peer identity " + peerID.String()}
	}
	if g.isDraining() {
		return nil, &refusal{causewayv1.StreamCode_STREAM_CODE_DRAINING, "gateway " + g.cfg.Cluster + " is draining"}
	}
	key := catalog.ServiceKey{Namespace: h.GetNamespace(), Name: h.GetService()}
	x, ok := v.Export(key, g.cfg.Cluster)
	if !ok {
		if len(v.Exports(key)) == 0 {
			return nil, &refusal{causewayv1.StreamCode_STREAM_CODE_UNKNOWN_SERVICE, key.String() + " is not exported anywhere"}
		}
		return nil, &refusal{causewayv1.StreamCode_STREAM_CODE_NOT_EXPORTED, key.String() + " is not exported by " + g.cfg.Cluster}
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

// dialLocal dials a ready endpoint of a local export on the target of
// service port port, trying endpoints in random order.
func (g *Gateway) dialLocal(ctx context.Context, x *causewayv1.ExportRecord, port uint32) (*net.TCPConn, error) {
	var sp *causewayv1.ServicePort
	for _, p := range x.GetPorts() {
		if p.GetPort() == port && p.GetProtocol() == causewayv1.Protocol_PROTOCOL_TCP {
			sp = p
		}
	}
	if sp == nil {
		return nil, &refusal{causewayv1.StreamCode_STREAM_CODE_NOT_EXPORTED,
			"port " + strconv.Itoa(int(port)) + " is not exposed by " + g.cfg.Cluster}
	}
	var ready []*causewayv1.Endpoint
	for _, e := range x.GetEndpoints() {
		if e.GetReady() {
			ready = append(ready, e)
		}
	}
	if len(ready) == 0 {
		return nil, &refusal{causewayv1.StreamCode_STREAM_CODE_NO_ENDPOINTS, "no ready endpoint in " + g.cfg.Cluster}
	}
	var lastErr error
	d := net.Dialer{Timeout: g.cfg.DialTimeout}
	for _, i := range rand.Perm(len(ready)) {
		e := ready[i]
		target := port
		if t, ok := e.GetTargetPorts()[sp.GetName()]; ok && sp.GetName() != "" {
			target = t
		} else if t, ok := e.GetTargetPorts()[strconv.Itoa(int(port))]; ok {
			target = t
		}
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(e.GetAddress(), strconv.Itoa(int(target))))
		if err != nil {
			lastErr = err
			continue
		}
		return c.(*net.TCPConn), nil
	}
	return nil, &refusal{causewayv1.StreamCode_STREAM_CODE_DIAL_FAILED, lastErr.Error()}
}
