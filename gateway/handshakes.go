package gateway

import (
	"context"
	"sync/atomic"

	"github.com/quic-go/quic-go"
)

// handshakeKey is the connection-context key of a server handshake's
// state.
type handshakeKey struct{}

// handshakeState follows one server-side connection attempt.
type handshakeState struct {
	accepted atomic.Bool // the listener handed the connection out
}

// trackHandshake is the transport's ConnContext: every server-side
// connection attempt that ends before the listener hands it out (refused
// during TLS: no or an untrusted certificate, another ALPN; or timed out)
// is counted as handshakes_total{role="server",result="rejected"}, so
// certificate probing shows in metrics. It costs one context per
// connection, nothing per packet or stream.
func (g *Gateway) trackHandshake(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
	st := &handshakeState{}
	rejected := g.metrics.handshakes.WithLabelValues("server", "rejected")
	// quic-go cancels ctx when the connection closes or its handshake fails.
	context.AfterFunc(ctx, func() {
		if !st.accepted.Load() {
			rejected.Inc()
		}
	})
	return context.WithValue(ctx, handshakeKey{}, st), nil
}

// handshakeAccepted marks conn's handshake as completed and handed out.
func handshakeAccepted(conn *quic.Conn) {
	if st, ok := conn.Context().Value(handshakeKey{}).(*handshakeState); ok {
		st.accepted.Store(true)
	}
}
