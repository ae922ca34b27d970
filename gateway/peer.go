package gateway

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// peer is one active peer cluster (one this gateway has sent a flow to):
// a connection to each of its gateway instances, kept open and re-dialed
// with back-off by the instance's own goroutine.
type peer struct {
	cluster string
	open    atomic.Int64 // flows open on any instance of the cluster

	mu        sync.Mutex // guards instances, conn
	instances map[string]*instance
	// conn is the connection the latest stream to the cluster was opened
	// on (nil before the first).
	conn *quic.Conn
}

func instanceKey(name string, addrs []string) string {
	return name + "|" + strings.Join(addrs, ",")
}

// close closes every connection of the peer (gateway shutdown).
func (p *peer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, in := range p.instances {
		in.mu.Lock()
		if in.conn != nil {
			_ = in.conn.CloseWithError(tunnel.ConnCodeNoError, "gateway shutting down")
		}
		in.mu.Unlock()
	}
}

// stopPeers waits for the instance goroutines (they end with the context
// given to peers.start; their connections are closed by shutdown), lets no
// new one start, and stops the outlier detector.
func (g *Gateway) stopPeers() {
	g.peers.stop()
	g.outliers.close()
}

// forgetPeerClusters drops the outlier state and metric series of peer
// clusters that are not members.
func (g *Gateway) forgetPeerClusters(members map[string]bool) {
	for _, c := range g.outliers.forget(func(c string) bool { return members[c] }) {
		g.metrics.forgetPeerCluster(c)
	}
}
