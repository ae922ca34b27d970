package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// Peer connections outlive the certificates they were opened with: TLS
// checks certificates only in the handshake, and QUIC connections between
// gateways last as long as the gateways do. Without more, a cluster whose
// CA was dropped from the bundles (rotation step 3, or a cluster removed
// after a compromise) would keep its open connections, and a gateway would
// keep presenting the leaf it had when it dialed long after renewing it.
//
// So the gateway re-verifies every live peer connection whenever the trust
// bundles change and every ReverifyInterval:
//
//   - a connection it dialed is replaced when the peer's chain no longer
//     verifies (peer_untrusted), will have expired by the check after next
//     (peer_expiring: the peer has renewed long before, and its new leaf
//     is presented on the new connection), or when the certificate this
//     gateway presented is no longer its current one (renewed). Replacing
//     makes before it breaks:
//     new flows wait for a new dial, which starts at once (and fails if the
//     peer is untrusted, so flows move to other clusters), while the old
//     connection closes as soon as its open flows end, after ReplaceGrace
//     at the latest;
//   - a connection it accepted is closed with ConnCodeUntrusted
//     ReplaceGrace after its peer's chain stopped verifying (untrusted or
//     expired). A legitimate peer has replaced it long before (it re-dials
//     when it renews, and it renews before its CA is dropped and before
//     its leaf expires); one that did not keeps at most ReplaceGrace of
//     service.
//
// Both sides renewing their leaves therefore roll their connections over
// once per renewal, without failing a flow.

const (
	reasonPeerUntrusted = "peer_untrusted"
	reasonPeerExpiring  = "peer_expiring"
	reasonRenewed       = "renewed"
)

// reverifyEvery calls reverify every ReverifyInterval until ctx ends.
func (g *Gateway) reverifyEvery(ctx context.Context) {
	t := time.NewTicker(g.cfg.ReverifyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.reverify()
		}
	}
}

// reverify checks every live peer connection against the current bundles
// and this gateway's current certificate (see above).
func (g *Gateway) reverify() {
	now := time.Now()
	var own []byte
	if c, err := g.tls.Certificate(); err == nil && len(c.Certificate) > 0 {
		own = c.Certificate[0]
	}
	for _, in := range g.peers.instances() {
		in.mu.Lock()
		conn, leaf := in.conn, in.leaf
		in.mu.Unlock()
		if conn == nil || conn.Context().Err() != nil {
			continue
		}
		reason, err := g.checkPeer(conn.ConnectionState().TLS, now.Add(2*g.cfg.ReverifyInterval))
		if reason == "" && own != nil && leaf != nil && !bytes.Equal(own, leaf) {
			reason = reasonRenewed
		}
		if reason == "" {
			continue
		}
		select {
		case in.replace <- conn:
		default:
			continue // a request is pending already: counted and logged then
		}
		g.metrics.replaced.WithLabelValues("client", reason).Inc()
		switch reason {
		case reasonPeerUntrusted:
			in.log.Warn("peer gateway's certificate no longer verifies; replacing the connection", "err", err)
		case reasonPeerExpiring:
			in.log.Info("peer gateway's certificate on this connection expires soon; replacing the connection",
				"expires", leafNotAfter(conn))
		case reasonRenewed:
			in.log.Info("certificate renewed; replacing the connection to the peer gateway to present it")
		}
	}
	g.conns.conns.Range(func(k, v any) bool {
		conn, tc := k.(*quic.Conn), v.(*trackedConn)
		if !tc.accepted || tc.closing.Load() || conn.Context().Err() != nil {
			return true
		}
		// The ticker and a bundle change may check at once: the first to
		// mark the connection schedules its close.
		if reason, err := g.checkPeer(conn.ConnectionState().TLS, now); reason != "" && tc.closing.CompareAndSwap(false, true) {
			g.metrics.replaced.WithLabelValues("server", reason).Inc()
			g.log.Warn("peer gateway's certificate no longer verifies; closing its connection after the grace",
				"peer", tc.cluster, "grace", g.cfg.ReplaceGrace, "err", err)
			t := time.AfterFunc(g.cfg.ReplaceGrace, func() {
				_ = conn.CloseWithError(tunnel.ConnCodeUntrusted, "peer certificate no longer verifies")
			})
			context.AfterFunc(conn.Context(), func() { t.Stop() })
		}
		return true
	})
}

// checkPeer says whether the peer chain of cs verifies at the time at
// against the current bundles: "" if it does; reasonPeerExpiring if it
// would but for the expiry of a certificate in it (it verifies at a time
// when all of them were valid); else reasonPeerUntrusted, with the error.
func (g *Gateway) checkPeer(cs tls.ConnectionState, at time.Time) (string, error) {
	_, err := certs.VerifyPeer(cs, g.bundles, at)
	if err == nil {
		return "", nil
	}
	var notBefore, notAfter time.Time
	for i, c := range cs.PeerCertificates {
		if i == 0 || c.NotBefore.After(notBefore) {
			notBefore = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	if len(cs.PeerCertificates) > 0 && !notAfter.Before(notBefore) {
		if _, verr := certs.VerifyPeer(cs, g.bundles, notAfter); verr == nil {
			return reasonPeerExpiring, err
		}
	}
	return reasonPeerUntrusted, err
}

// replaceConn makes conn no longer in's connection: new streams wait for
// the dial that follows at once (it is announced here), and conn closes
// when its open streams have ended, ReplaceGrace at the latest. Streams
// still waiting for a response on conn are not abandoned: the peer is
// there to answer them.
func (s *peerSet) replaceConn(ctx context.Context, in *instance, conn *quic.Conn) {
	in.mu.Lock()
	if in.conn == conn {
		in.conn, in.leaf = nil, nil
	}
	in.dialing, in.dialDone = true, make(chan struct{})
	// The next connection gets its own abandon context; conn's is ended
	// once conn is closed, so late attempts on it give up then.
	abandonOld := in.abandonConn
	in.abandon, in.abandonConn = nil, nil
	var done chan struct{}
	if in.openOn[conn] > 0 {
		done = make(chan struct{})
		in.replaced[conn] = done
	}
	in.mu.Unlock()
	s.goOwned(func() {
		defer func() {
			if abandonOld != nil {
				abandonOld()
			}
		}()
		if done != nil {
			t := time.NewTimer(s.timing.replaceGrace)
			defer t.Stop()
			select {
			case <-done:
			case <-t.C:
				in.log.Info("replaced connection still has open flows after the grace; closing it")
			case <-conn.Context().Done():
				return
			case <-ctx.Done():
				return // the gateway stops: shutdown closes it after its own grace
			}
		}
		_ = conn.CloseWithError(tunnel.ConnCodeNoError, "connection replaced")
		in.mu.Lock()
		delete(in.replaced, conn)
		in.mu.Unlock()
	})
}

// leafNotAfter is the expiry of conn's peer leaf (zero if none).
func leafNotAfter(conn *quic.Conn) time.Time {
	if pc := conn.ConnectionState().TLS.PeerCertificates; len(pc) > 0 {
		return pc[0].NotAfter
	}
	return time.Time{}
}
