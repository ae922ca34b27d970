package gateway

import (
	"context"
	"errors"
	"math/rand/v2"

	"github.com/quic-go/quic-go"
)

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
func (s *peerSet) pick(ctx context.Context, cluster string, allowSilent bool) (*instance, *quic.Conn, error) {
	for {
		p := s.activate(s.view(), cluster)
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

// conn returns a live connection to a gateway instance of cluster, as
// pick chooses it, without counting a stream on it.
func (g *Gateway) conn(ctx context.Context, cluster string) (*quic.Conn, error) {
	in, conn, err := g.peers.pick(ctx, cluster, true)
	if err != nil {
		return nil, err
	}
	in.release(conn)
	return conn, nil
}

// silent reports whether every connected instance of cluster is silent,
// with no dial in progress: a flow should try it last.
func (s *peerSet) silent(cluster string) bool {
	p := s.get(cluster)
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
	p := g.peers.get(cluster)
	if p == nil {
		return 0
	}
	return max(int(p.open.Load())+g.l7Adjust(cluster), 0)
}
