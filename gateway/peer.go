package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// stableConn is how long a connection must have lived for its loss to
// restart the re-dial back-off from zero (an immediate re-dial).
const stableConn = 2 * time.Second

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

// instance is the connection to one gateway instance of a peer cluster.
// Its goroutine (runInstance) dials it, holds the connection, and
// re-dials with capped, jittered exponential back-off when it dies. An
// instance that left the catalog is retired: it takes no new stream and
// closes its connection once its open streams have ended.
type instance struct {
	peer   *peer
	name   string
	addrs  []string
	log    *slog.Logger
	ctx    context.Context // ends when retired or when the gateway stops
	cancel context.CancelFunc
	idle   chan struct{} // (cap 1) signaled when a retired instance's last stream ends

	mu       sync.Mutex // guards conn, leaf, dialing, dialDone, lastErr, retryAt, draining, silent, retired, openOn, replaced
	conn     *quic.Conn
	leaf     []byte // DER of the certificate this gateway presented on conn
	dialing  bool
	dialDone chan struct{} // closed when the dial in progress ends
	lastErr  error
	retryAt  time.Time // next dial, while backing off
	draining bool      // the peer answered DRAINING on conn
	silent   bool      // nothing received on conn for longer than keep-alives allow
	retired  bool
	// openOn counts the open streams per connection (openLocked sums
	// them), and replaced holds a
	// channel for each replaced connection that still has some, closed
	// when its last one ends (see reverify.go).
	openOn   map[*quic.Conn]int
	replaced map[*quic.Conn]chan struct{}
	// replace (cap 1) asks the instance's goroutine to replace the
	// connection sent (ignored unless it is still the current one).
	replace chan *quic.Conn
	// abandon ends when streams still waiting for their response on conn
	// should give up and move to another candidate: the instance left the
	// catalog (a SIGKILLed gateway's lease is revoked at once) or went
	// silent (a partition). Streams already answered are not affected, and
	// attempts started after the silence was noticed are not abandoned by
	// it (the instance may be the last resort).
	abandon     context.Context
	abandonConn context.CancelFunc
}

// peerLife is the lifetime of the instance goroutines; guarded by
// Gateway.peersMu.
type peerLife struct {
	ctx     context.Context // nil until startPeers; instances run until it ends
	stopped bool
	wg      sync.WaitGroup
	view    *catalog.View // the last view synced
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

// startPeers lets syncPeers run instance goroutines until ctx ends.
func (g *Gateway) startPeers(ctx context.Context) {
	g.peersMu.Lock()
	defer g.peersMu.Unlock()
	g.peerLife.ctx = ctx
}

// stopPeers waits for the instance goroutines (they end with the context
// given to startPeers; their connections are closed by shutdown) and
// lets no new one start.
func (g *Gateway) stopPeers() {
	g.peersMu.Lock()
	g.peerLife.stopped = true
	g.peersMu.Unlock()
	g.peerLife.wg.Wait()
	g.outliers.close()
}

// syncPeers makes the instances of every active peer cluster follow v:
// one per gateway record of the cluster.
func (g *Gateway) syncPeers(v *catalog.View) {
	g.peersMu.Lock()
	defer g.peersMu.Unlock()
	g.syncPeersLocked(v, "")
}

// syncPeersLocked syncs the active peer clusters, first making activate
// (if not empty) one: a peer cluster becomes active with the first flow to
// it and stays so while it is a member, its connections kept open.
func (g *Gateway) syncPeersLocked(v *catalog.View, activate string) {
	life := &g.peerLife
	if life.ctx == nil || life.stopped || life.ctx.Err() != nil {
		return
	}
	if activate != "" && activate != g.cfg.Cluster && g.peers[activate] == nil {
		g.peers[activate] = &peer{cluster: activate, instances: map[string]*instance{}}
	} else if life.view == v {
		return
	}
	life.view = v
	members := map[string]bool{}
	for _, c := range v.Clusters() {
		members[c.GetName()] = true
	}
	for cluster, p := range g.peers {
		want := map[string][]string{} // instance key -> addresses
		if members[cluster] {
			for _, gw := range v.Gateways(cluster) {
				if len(gw.GetAddresses()) > 0 {
					want[instanceKey(gw.GetInstance(), gw.GetAddresses())] = gw.GetAddresses()
				}
			}
		}
		p.mu.Lock()
		if p.instances == nil {
			p.instances = map[string]*instance{}
		}
		for key, in := range p.instances {
			if _, ok := want[key]; !ok {
				in.log.Info("peer gateway instance left the catalog; pending flows move on, open ones finish")
				in.retire()
				delete(p.instances, key)
			}
		}
		for key, addrs := range want {
			if _, ok := p.instances[key]; ok {
				continue
			}
			name, _, _ := strings.Cut(key, "|")
			ctx, cancel := context.WithCancel(life.ctx)
			in := &instance{peer: p, name: name, addrs: addrs, ctx: ctx, cancel: cancel,
				idle: make(chan struct{}, 1), dialing: true, dialDone: make(chan struct{}),
				openOn: map[*quic.Conn]int{}, replaced: map[*quic.Conn]chan struct{}{}, replace: make(chan *quic.Conn, 1),
				log: g.log.With("peer", cluster, "instance", name)}
			p.instances[key] = in
			life.wg.Go(func() { g.runInstance(life.ctx, in) })
		}
		p.mu.Unlock()
		if !members[cluster] {
			delete(g.peers, cluster)
		}
	}
	for _, c := range g.outliers.forget(func(c string) bool { return members[c] }) {
		g.metrics.forgetPeerCluster(c)
	}
}

// retire stops the instance taking new streams; its goroutine closes the
// connection when the open streams have ended.
func (in *instance) retire() {
	in.mu.Lock()
	in.retired = true
	in.abandonPendingLocked()
	in.mu.Unlock()
	in.cancel()
}

// release ends a stream taken on in by pick, on conn.
func (in *instance) release(conn *quic.Conn) {
	in.peer.open.Add(-1)
	in.mu.Lock()
	if in.openOn[conn]--; in.openOn[conn] <= 0 {
		delete(in.openOn, conn)
		if done, ok := in.replaced[conn]; ok {
			close(done)
			delete(in.replaced, conn)
		}
	}
	last := in.retired && in.openLocked() == 0
	in.mu.Unlock()
	if last {
		select {
		case in.idle <- struct{}{}:
		default:
		}
	}
}

// markDraining stops new streams going to in while conn is its connection.
func (in *instance) markDraining(conn *quic.Conn) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.conn == conn && !in.draining {
		in.draining = true
		in.log.Info("peer gateway is draining; no new flows to it")
	}
}

// usableLocked reports whether in takes new streams; in.mu is held.
func (in *instance) usableLocked() bool {
	return in.conn != nil && !in.draining && !in.retired && in.conn.Context().Err() == nil
}

// runInstance keeps a connection to in open until the gateway stops or
// in is retired.
func (g *Gateway) runInstance(ctx context.Context, in *instance) {
	defer in.endDial(nil, nil, context.Canceled) // wake waiters if a dial was announced
	for attempt := 0; ; {
		conn, leaf, err := g.dialInstance(in)
		in.endDial(conn, leaf, err)
		if err == nil {
			g.conns.track(in.peer.cluster, conn) // for the RTT gauge
			start := time.Now()
			switch g.holdInstance(ctx, in, conn) {
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
		d := g.backoff(attempt)
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

// endDial records the end of a dial announced by dialing = true: conn,
// on which this gateway presented leaf, or err.
func (in *instance) endDial(conn *quic.Conn, leaf []byte, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.dialing {
		return
	}
	in.dialing = false
	close(in.dialDone)
	if err != nil {
		in.lastErr = err
		return
	}
	in.conn, in.leaf, in.draining, in.silent, in.lastErr = conn, leaf, false, false, nil
	if in.abandonConn != nil {
		in.abandonConn()
	}
	in.abandon, in.abandonConn = context.WithCancel(context.Background())
	if in.retired {
		in.abandonConn()
	}
}

// abandoned is the context that ends when streams on conn still waiting
// for their response should give up (see instance.abandon).
func (in *instance) abandoned(conn *quic.Conn) context.Context {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.conn != conn || in.abandon == nil {
		return context.Background()
	}
	return in.abandon
}

// abandonPendingLocked makes streams waiting for a response on the
// current connection give up; in.mu is held.
func (in *instance) abandonPendingLocked() {
	if in.abandonConn != nil {
		in.abandonConn()
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
func (g *Gateway) holdInstance(ctx context.Context, in *instance, conn *quic.Conn) holdResult {
	switch g.watchConn(in, conn) {
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
		g.replaceConn(ctx, in, conn)
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
func (g *Gateway) watchConn(in *instance, conn *quic.Conn) watchResult {
	ka := g.cfg.Tunnel.KeepAlivePeriod
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
func (g *Gateway) backoff(attempt int) time.Duration {
	if attempt == 0 {
		return 0
	}
	d := g.cfg.ReconnectBackoffMax
	if shift := attempt - 1; shift < 32 {
		if b := g.cfg.ReconnectBackoff << shift; b > 0 && b < d {
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

// dialError is a flow's failure to get any connection to a peer cluster.
type dialError struct {
	cluster string
	err     error
}

func (e *dialError) Error() string { return "connect to cluster " + e.cluster + ": " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// errAllDraining says every connected instance of a cluster is draining.
var errAllDraining = errors.New("every connected gateway instance is draining")

// errSilent says every connected instance of a cluster has gone silent.
var errSilent = errors.New("every connected gateway instance has gone silent")

// pick returns a connection for a new stream to cluster, chosen by power
// of two choices on open streams among its connected instances, and
// counts the stream on it (release it with in.release). When no instance
// is connected it waits for dials in progress; it does not wait out a
// back-off.
//
// Silent instances (see watchConn) are used only with allowSilent, and
// only when no other instance is connected.
func (g *Gateway) pick(ctx context.Context, cluster string, allowSilent bool) (*instance, *quic.Conn, error) {
	for {
		g.peersMu.Lock()
		g.syncPeersLocked(g.src.View(), cluster)
		p := g.peers[cluster]
		g.peersMu.Unlock()
		if p == nil {
			return nil, nil, &dialError{cluster, errors.New("no live gateway instance")}
		}
		in, conn, wait, err := p.choose(allowSilent)
		if conn != nil {
			return in, conn, nil
		}
		if wait == nil {
			return nil, nil, &dialError{cluster, err}
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, nil, &dialError{cluster, ctx.Err()}
		}
	}
}

// choose picks an instance for a new stream. Without a usable one it
// returns a dial to wait for, or why there is none.
func (p *peer) choose(allowSilent bool) (*instance, *quic.Conn, <-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var usable, silent []*instance
	var wait <-chan struct{}
	var lastErr error
	draining := 0
	for _, in := range p.instances {
		in.mu.Lock()
		switch {
		case in.usableLocked() && in.silent:
			silent = append(silent, in)
		case in.usableLocked():
			usable = append(usable, in)
		case in.dialing:
			wait = in.dialDone
		case in.draining && in.conn != nil:
			draining++
		case in.lastErr != nil:
			lastErr = in.lastErr
		}
		in.mu.Unlock()
	}
	if len(usable) == 0 && wait == nil && allowSilent {
		usable = silent
	}
	if len(usable) == 0 {
		switch {
		case wait != nil:
			return nil, nil, wait, nil
		case len(silent) > 0:
			return nil, nil, nil, errSilent
		case lastErr != nil:
			return nil, nil, nil, lastErr
		case draining > 0:
			return nil, nil, nil, errAllDraining
		}
		return nil, nil, nil, errors.New("no connected gateway instance")
	}
	in := usable[0]
	if len(usable) > 1 {
		a, b := rand.IntN(len(usable)), rand.IntN(len(usable)-1)
		if b >= a {
			b++
		}
		in = usable[a]
		if openOf(usable[b]) < openOf(in) {
			in = usable[b]
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.usableLocked() { // died since the scan; the caller's next try finds out
		return nil, nil, nil, errors.New("connection to gateway instance " + in.name + " just closed")
	}
	in.openOn[in.conn]++
	p.open.Add(1)
	p.conn = in.conn
	return in, in.conn, nil, nil
}

func openOf(in *instance) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.openLocked()
}

// openLocked is the number of streams open on in, on any of its
// connections; in.mu is held.
func (in *instance) openLocked() int {
	n := 0
	for _, c := range in.openOn {
		n += c
	}
	return n
}

// conn returns a live connection to a gateway instance of cluster, as
// pick chooses it, without counting a stream on it.
func (g *Gateway) conn(ctx context.Context, cluster string) (*quic.Conn, error) {
	in, conn, err := g.pick(ctx, cluster, true)
	if err != nil {
		return nil, err
	}
	in.release(conn)
	return conn, nil
}

// peerSilent reports whether every connected instance of cluster is
// silent, with no dial in progress: a flow should try it last.
func (g *Gateway) peerSilent(cluster string) bool {
	g.peersMu.Lock()
	p := g.peers[cluster]
	g.peersMu.Unlock()
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	silent := false
	for _, in := range p.instances {
		in.mu.Lock()
		switch {
		case in.dialing:
			in.mu.Unlock()
			return false
		case in.usableLocked() && !in.silent:
			in.mu.Unlock()
			return false
		case in.usableLocked():
			silent = true
		}
		in.mu.Unlock()
	}
	return silent
}

// openStreams returns the flows this gateway has open to cluster.
func (g *Gateway) openStreams(cluster string) int {
	if cluster == g.cfg.Cluster {
		return int(g.localOpen.Load())
	}
	g.peersMu.Lock()
	p := g.peers[cluster]
	g.peersMu.Unlock()
	if p == nil {
		return 0
	}
	return int(p.open.Load())
}
