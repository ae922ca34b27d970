package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// connSet tracks the live QUIC connections to peer gateways, accepted and
// dialed, by peer cluster: for the RTT gauge, re-verification and to
// close them on shutdown. A connection leaves the set by itself when it
// closes.
type connSet struct {
	conns sync.Map // *quic.Conn → *trackedConn
}

// trackedConn is what connSet knows of a connection.
type trackedConn struct {
	cluster  string
	accepted bool
	closing  atomic.Bool // an accepted connection found untrusted: closes after the grace
}

// track adds c, a connection dialed to cluster's gateway; adding it again
// is a cheap no-op, so callers may track on every use.
func (s *connSet) track(cluster string, c *quic.Conn) { s.add(c, &trackedConn{cluster: cluster}) }

// trackAccepted adds c, a connection accepted from cluster's gateway.
func (s *connSet) trackAccepted(cluster string, c *quic.Conn) {
	s.add(c, &trackedConn{cluster: cluster, accepted: true})
}

func (s *connSet) add(c *quic.Conn, tc *trackedConn) {
	if _, loaded := s.conns.LoadOrStore(c, tc); loaded {
		return
	}
	context.AfterFunc(c.Context(), func() { s.conns.Delete(c) })
}

// rtts returns the mean smoothed RTT of the connections to each cluster.
func (s *connSet) rtts() map[string]time.Duration {
	sum := map[string]time.Duration{}
	n := map[string]int{}
	s.conns.Range(func(k, v any) bool {
		c, cluster := k.(*quic.Conn), v.(*trackedConn).cluster
		if c.Context().Err() == nil {
			sum[cluster] += c.ConnectionStats().SmoothedRTT
			n[cluster]++
		}
		return true
	})
	for cluster := range sum {
		sum[cluster] /= time.Duration(n[cluster])
	}
	return sum
}

// closeAll closes every tracked connection without error (shutdown).
func (s *connSet) closeAll(reason string) {
	s.conns.Range(func(k, _ any) bool {
		_ = k.(*quic.Conn).CloseWithError(tunnel.ConnCodeNoError, reason)
		return true
	})
}

// clusterOf returns the member cluster whose trust domain id belongs to,
// or labelOther.
func clusterOf(v *catalog.View, id certs.ID) string {
	for _, c := range v.Clusters() {
		if c.GetTrustDomain() == id.TrustDomain {
			return c.GetName()
		}
	}
	return labelOther
}
