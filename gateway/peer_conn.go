package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// stableConn is how long a connection must have lived for its loss to
// restart the re-dial back-off from zero (an immediate re-dial).
const stableConn = 2 * time.Second

// runInstance keeps a connection to in open until the gateway stops or
// in is retired.
func (s *peerSet) runInstance(ctx context.Context, in *instance) {
	defer in.endDial(nil, nil, context.Canceled) // wake waiters if a dial was announced
	for attempt := 0; ; {
		conn, leaf, err := s.dial(in)
		in.endDial(conn, leaf, err)
		if err == nil {
			s.track(in.peer.cluster, conn) // for the RTT gauge
			start := time.Now()
			switch s.holdInstance(ctx, in, conn) {
			case holdEnded:
				return
			case holdReplaced:
				attempt = 0 // the next dial is announced already: no back-off
				continue
			}
			in.log.Info("connection to peer gateway lost", "err", context.Cause(conn.Context()))
			if time.Since(start) >= stableConn {
				attempt = 0
			}
		} else {
			if in.ctx.Err() != nil {
				return
			}
			in.log.Warn("cannot connect to peer gateway", "err", err, "attempt", attempt+1)
		}
		d := s.backoff(attempt)
		attempt++
		if d > 0 {
			in.mu.Lock()
			in.retryAt = time.Now().Add(d)
			in.mu.Unlock()
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-in.ctx.Done():
				t.Stop()
				return
			}
		}
		in.mu.Lock()
		in.dialing, in.dialDone, in.retryAt = true, make(chan struct{}), time.Time{}
		in.mu.Unlock()
	}
}

// holdResult is how holding a connection ended.
type holdResult int

const (
	holdLost     holdResult = iota // the connection died: re-dial with back-off
	holdEnded                      // the instance or the gateway ended
	holdReplaced                   // replaced (see reverify.go): dial again at once
)

// holdInstance holds conn until it dies, is replaced or the instance
// ends. A retired instance closes conn once its streams have ended; on
// gateway shutdown the connection is left to shutdown, which gives open
// flows their grace first.
func (s *peerSet) holdInstance(ctx context.Context, in *instance, conn *quic.Conn) holdResult {
	switch s.watchConn(in, conn) {
	case watchDied:
		in.mu.Lock()
		if in.conn == conn {
			in.conn = nil
		}
		in.mu.Unlock()
		if in.ctx.Err() != nil {
			return holdEnded
		}
		return holdLost
	case watchReplace:
		s.replaceConn(ctx, in, conn)
		return holdReplaced
	}
	if ctx.Err() != nil {
		return holdEnded
	}
	for {
		in.mu.Lock()
		n := in.openLocked()
		in.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-in.idle:
		case <-conn.Context().Done():
			return holdEnded
		case <-ctx.Done():
			return holdEnded
		}
	}
	in.log.Info("peer gateway instance left the catalog; closing its connection")
	_ = conn.CloseWithError(tunnel.ConnCodeNoError, "gateway instance left the catalog")
	return holdEnded
}

// watchResult is how watching a connection ended.
type watchResult int

const (
	watchDied    watchResult = iota // the connection died
	watchEnded                      // the instance ended
	watchReplace                    // the connection is to be replaced
)

// watchConn waits until conn dies, in ends or conn is to be replaced. Meanwhile
// it marks in silent while nothing arrived on conn for longer than a live
// peer allows: with keep-alives, a live peer's ACK of our PING arrives at
// most KeepAlivePeriod + RTT after its last packet, so a gateway that
// vanished (SIGKILL, host down) is avoided for new flows well before the
// idle timeout closes the connection.
func (s *peerSet) watchConn(in *instance, conn *quic.Conn) watchResult {
	ka := s.timing.keepAlive
	tick := time.NewTicker(max(ka/4, 10*time.Millisecond))
	defer tick.Stop()
	last, lastAt := conn.ConnectionStats().PacketsReceived, time.Now()
	for {
		select {
		case <-conn.Context().Done():
			return watchDied
		case <-in.ctx.Done():
			return watchEnded
		case c := <-in.replace:
			if c == conn {
				return watchReplace
			}
		case now := <-tick.C:
			st := conn.ConnectionStats()
			silent := false
			if st.PacketsReceived != last {
				last, lastAt = st.PacketsReceived, now
			} else {
				silent = now.Sub(lastAt) > 2*ka+4*st.SmoothedRTT+50*time.Millisecond
			}
			in.mu.Lock()
			changed := in.conn == conn && in.silent != silent
			if changed {
				in.silent = silent
				if silent {
					// Attempts waiting for a response now give up and move
					// on (a partitioned or vanished peer will not answer);
					// attempts made from now on, if the instance is the last
					// resort, get a fresh chance.
					in.abandonPendingLocked()
					in.abandon, in.abandonConn = context.WithCancel(context.Background())
				}
			}
			in.mu.Unlock()
			if changed && silent {
				in.log.Warn("peer gateway silent; new flows avoid it", "silent_for", now.Sub(lastAt).Round(time.Millisecond))
			} else if changed {
				in.log.Info("peer gateway heard again")
			}
		}
	}
}

// backoff is the wait before re-dial attempt n: none for the first, then
// ReconnectBackoff doubling up to ReconnectBackoffMax, with jitter (a
// random point in the upper half).
func (s *peerSet) backoff(attempt int) time.Duration {
	if attempt == 0 {
		return 0
	}
	d := s.timing.backoffMax
	if shift := attempt - 1; shift < 32 {
		if b := s.timing.backoff << shift; b > 0 && b < d {
			d = b
		}
	}
	return d/2 + rand.N(d/2+1)
}

// dialInstance connects to the first reachable address of in, requiring
// its cluster's gateway identity. It returns the connection and the DER
// of the certificate this gateway presented on it.
func (g *Gateway) dialInstance(in *instance) (*quic.Conn, []byte, error) {
	cluster := in.peer.cluster
	rec, ok := g.src.View().Cluster(cluster)
	if !ok {
		return nil, nil, fmt.Errorf("dial %s: not a member cluster", cluster)
	}
	want, err := certs.NewID(rec.GetTrustDomain(), "gateway")
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", cluster, err)
	}
	clientTLS := certs.ClientConfig(certs.TLSOptions{
		Source:     g.tls,
		Bundles:    g.bundles,
		Authorize:  certs.AuthorizeID(want),
		NextProtos: []string{tunnel.ALPN},
	})
	var (
		presentedMu sync.Mutex
		presented   []byte
	)
	getCert := clientTLS.GetClientCertificate
	clientTLS.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c, err := getCert(cri)
		if err == nil && len(c.Certificate) > 0 {
			presentedMu.Lock()
			presented = c.Certificate[0]
			presentedMu.Unlock()
		}
		return c, err
	}
	var lastErr error = fmt.Errorf("dial %s gateway %s: no address", cluster, in.name)
	for _, addr := range in.addrs {
		udpAddr, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			lastErr = fmt.Errorf("dial %s gateway %s: %w", cluster, addr, err)
			continue
		}
		dctx, cancel := context.WithTimeout(in.ctx, g.cfg.DialTimeout)
		conn, err := g.transport.Dial(dctx, udpAddr, clientTLS, g.cfg.Tunnel.QUIC())
		cancel()
		if err != nil {
			g.metrics.handshakes.WithLabelValues("client", "error").Inc()
			lastErr = fmt.Errorf("dial %s gateway %s: %w", cluster, addr, err)
			if in.ctx.Err() != nil {
				break
			}
			continue
		}
		g.metrics.handshakes.WithLabelValues("client", "ok").Inc()
		in.log.Info("connected to peer gateway", "addr", addr)
		presentedMu.Lock()
		defer presentedMu.Unlock()
		return conn, presented, nil
	}
	return nil, nil, lastErr
}
