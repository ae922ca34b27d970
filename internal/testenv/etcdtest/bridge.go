package etcdtest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"time"
)

// bridge forwards TCP connections from its own listener to one member's
// client or peer port. TestCluster clients and members dial bridges, so
// stopping a member can cut its client connections at once, as a crash
// would, instead of waiting for etcd's graceful stop to give up on open
// watch streams (its request timeout, about 6s), and closing the cluster
// ends every connection between members instead of leaving them to etcd's
// read timeouts. The bridge's address outlives the member.
type bridge struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and every forwarder

	mu    sync.Mutex // guards up, conns
	up    bool
	conns map[net.Conn]struct{}
}

// newBridge listens on an ephemeral port of host and forwards to target
// once up.
func newBridge(host, target string) (*bridge, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	b := &bridge{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.accept()
	return b, nil
}

// Addr is the host:port clients dial.
func (b *bridge) Addr() string { return b.ln.Addr().String() }

// URL is the http URL of Addr.
func (b *bridge) URL() url.URL { return url.URL{Scheme: "http", Host: b.Addr()} }

func (b *bridge) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go b.forward(c)
	}
}

// forward pipes in to a new connection to the target, or closes in while
// the bridge is down or the target refuses.
func (b *bridge) forward(in net.Conn) {
	defer b.wg.Done()
	var out net.Conn
	if b.isUp() {
		out, _ = net.DialTimeout("tcp", b.target, 5*time.Second)
	}
	if out == nil || !b.track(in, out) {
		_ = in.Close()
		if out != nil {
			_ = out.Close()
		}
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		_, _ = io.Copy(out, in)
		b.untrack(in, out)
	}()
	_, _ = io.Copy(in, out)
	b.untrack(in, out)
}

func (b *bridge) isUp() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.up
}

// track registers a forwarded pair, unless the bridge went down meanwhile.
func (b *bridge) track(in, out net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.up {
		return false
	}
	b.conns[in], b.conns[out] = struct{}{}, struct{}{}
	return true
}

// untrack closes a pair (ending both copies) and forgets it.
func (b *bridge) untrack(in, out net.Conn) {
	_ = in.Close()
	_ = out.Close()
	b.mu.Lock()
	delete(b.conns, in)
	delete(b.conns, out)
	b.mu.Unlock()
}

// setUp starts or stops forwarding; going down closes every connection.
func (b *bridge) setUp(up bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.up = up
	if !up {
		for c := range b.conns {
			_ = c.Close()
		}
	}
}

// close stops the bridge and waits for its goroutines. Safe to call again.
func (b *bridge) close() {
	_ = b.ln.Close()
	b.setUp(false)
	b.wg.Wait()
}
