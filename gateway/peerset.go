package gateway

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/quic-go/quic-go"
)

// peerSet owns the active peer clusters and the goroutines of their
// gateway instances.
//
// Rules:
//   - mu guards peers and life; a peer's own mu guards its instances, and
//     is taken after mu, never before.
//   - A peer cluster becomes active with the first flow to it (activate)
//     and stays so while it is a member; its instances follow its gateway
//     records in the catalog (one per record with addresses).
//   - Instance goroutines run only between start and stop, and stop waits
//     for every one of them (and for the goroutines started with goOwned).
type peerSet struct {
	self   string               // this gateway's cluster, never a peer
	log    *slog.Logger         // parent of the per-instance loggers
	view   func() *catalog.View // the current catalog view (pick syncs to it)
	timing peerTiming
	// dial, track and forget are set by the wiring before start. dial
	// connects to an instance (Gateway.dialInstance) and returns the DER
	// of the certificate presented; track follows a dialed connection for
	// the RTT gauge.
	dial  func(in *instance) (*quic.Conn, []byte, error)
	track func(cluster string, conn *quic.Conn)
	// forget is called, with mu held, with the member clusters of every
	// newly synced view, so per-cluster state of others can be dropped.
	forget func(members map[string]bool)

	mu    sync.Mutex // guards peers, life
	peers map[string]*peer
	life  peerLife
}

// peerTiming is the set's share of the gateway Config.
type peerTiming struct {
	keepAlive    time.Duration // Tunnel.KeepAlivePeriod: when a connection is silent
	backoff      time.Duration // ReconnectBackoff: the first re-dial wait
	backoffMax   time.Duration // ReconnectBackoffMax
	replaceGrace time.Duration // ReplaceGrace: a replaced connection's open flows
}

// peerLife is the lifetime of the instance goroutines; guarded by
// peerSet.mu.
type peerLife struct {
	ctx     context.Context // nil until start; instances run until it ends
	stopped bool
	wg      sync.WaitGroup
	view    *catalog.View // the last view synced
}

// newPeerSet returns an empty set for the gateway of cluster self.
func newPeerSet(self string, log *slog.Logger, view func() *catalog.View) *peerSet {
	return &peerSet{self: self, log: log, view: view, peers: map[string]*peer{}}
}

// start lets sync run instance goroutines until ctx ends.
func (s *peerSet) start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.life.ctx = ctx
}

// stop waits for the instance goroutines (they end with the context given
// to start; their connections are closed by closeAll) and lets no new one
// start.
func (s *peerSet) stop() {
	s.mu.Lock()
	s.life.stopped = true
	s.mu.Unlock()
	s.life.wg.Wait()
}

// goOwned runs f in a goroutine that stop waits for.
func (s *peerSet) goOwned(f func()) { s.life.wg.Go(f) }

// get returns the active peer cluster named cluster, or nil.
func (s *peerSet) get(cluster string) *peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers[cluster]
}

// activate syncs to v, first making cluster active, and returns it (nil
// if it is not a member, is this cluster, or the set is not running).
func (s *peerSet) activate(v *catalog.View, cluster string) *peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncLocked(v, cluster)
	return s.peers[cluster]
}

// instances lists the instances of every active peer cluster.
func (s *peerSet) instances() []*instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*instance
	for _, p := range s.peers {
		p.mu.Lock()
		for _, in := range p.instances {
			out = append(out, in)
		}
		p.mu.Unlock()
	}
	return out
}

// closeAll closes every connection of every active peer (shutdown).
func (s *peerSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.peers {
		p.close()
	}
}

// sync makes the instances of every active peer cluster follow v: one per
// gateway record of the cluster.
func (s *peerSet) sync(v *catalog.View) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncLocked(v, "")
}

// syncLocked syncs the active peer clusters, first making activate (if not
// empty) one; s.mu is held.
func (s *peerSet) syncLocked(v *catalog.View, activate string) {
	life := &s.life
	if life.ctx == nil || life.stopped || life.ctx.Err() != nil {
		return
	}
	if activate != "" && activate != s.self && s.peers[activate] == nil {
		s.peers[activate] = &peer{cluster: activate, instances: map[string]*instance{}}
	} else if life.view == v {
		return
	}
	life.view = v
	members := map[string]bool{}
	for _, c := range v.Clusters() {
		members[c.GetName()] = true
	}
	for cluster, p := range s.peers {
		want := map[string][]string{} // instance key -> addresses
		if members[cluster] {
			for _, gw := range v.Gateways(cluster) {
				if len(gw.GetAddresses()) > 0 {
					want[instanceKey(gw.GetInstance(), gw.GetAddresses())] = gw.GetAddresses()
				}
			}
		}
		s.followLocked(p, want)
		if !members[cluster] {
			delete(s.peers, cluster)
		}
	}
	s.forget(members)
}

// followLocked retires p's instances that are not in want and starts one
// for each new key of want; s.mu is held.
func (s *peerSet) followLocked(p *peer, want map[string][]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
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
		in := s.newInstanceLocked(p, name, addrs)
		p.instances[key] = in
		ctx := s.life.ctx
		s.life.wg.Go(func() { s.runInstance(ctx, in) })
	}
}

// newInstanceLocked returns an instance of p whose first dial is announced;
// s.mu is held.
func (s *peerSet) newInstanceLocked(p *peer, name string, addrs []string) *instance {
	ctx, cancel := context.WithCancel(s.life.ctx)
	return &instance{peer: p, name: name, addrs: addrs, ctx: ctx, cancel: cancel,
		idle: make(chan struct{}, 1), dialing: true, dialDone: make(chan struct{}),
		openOn: map[*quic.Conn]int{}, replaced: map[*quic.Conn]chan struct{}{}, replace: make(chan *quic.Conn, 1),
		log: s.log.With("peer", p.cluster, "instance", name)}
}
