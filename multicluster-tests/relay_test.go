package multicluster

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// udpRelay forwards UDP datagrams between clients and one upstream
// address, one upstream socket per client; datagrams from or to a blocked
// client IP are dropped both ways: a network partition between that
// client and the upstream that leaves every other peer untouched.
type udpRelay struct {
	ln       *net.UDPConn
	upstream *net.UDPAddr

	mu      sync.Mutex
	blocked map[string]bool         // client IPs
	clients map[string]*net.UDPConn // by client address
	wg      sync.WaitGroup
	closed  bool
}

func startUDPRelay(t *testing.T, listen, upstream string) *udpRelay {
	t.Helper()
	la, err := net.ResolveUDPAddr("udp", listen)
	require.NoError(t, err)
	ua, err := net.ResolveUDPAddr("udp", upstream)
	require.NoError(t, err)
	ln, err := net.ListenUDP("udp", la)
	require.NoError(t, err)
	r := &udpRelay{ln: ln, upstream: ua, blocked: map[string]bool{}, clients: map[string]*net.UDPConn{}}
	r.wg.Go(r.serve)
	t.Cleanup(r.close)
	return r
}

func (r *udpRelay) addr() string { return r.ln.LocalAddr().String() }

// partition drops everything between ip and the upstream, or stops doing so.
func (r *udpRelay) partition(ip string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blocked[ip] = on
}

func (r *udpRelay) isBlocked(a *net.UDPAddr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blocked[a.IP.String()]
}

func (r *udpRelay) serve() {
	buf := make([]byte, 65536)
	for {
		n, from, err := r.ln.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if r.isBlocked(from) {
			continue
		}
		up, err := r.upstreamFor(from)
		if err != nil {
			continue
		}
		_, _ = up.Write(buf[:n])
	}
}

// upstreamFor returns the client's upstream socket, starting its
// return path on first use.
func (r *udpRelay) upstreamFor(client *net.UDPAddr) (*net.UDPConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[client.String()]; ok {
		return c, nil
	}
	if r.closed {
		return nil, net.ErrClosed
	}
	up, err := net.DialUDP("udp", &net.UDPAddr{IP: r.ln.LocalAddr().(*net.UDPAddr).IP}, r.upstream)
	if err != nil {
		return nil, err
	}
	r.clients[client.String()] = up
	r.wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			if r.isBlocked(client) {
				continue
			}
			_, _ = r.ln.WriteToUDP(buf[:n], client)
		}
	})
	return up, nil
}

func (r *udpRelay) close() {
	r.mu.Lock()
	r.closed = true
	_ = r.ln.Close()
	for _, c := range r.clients {
		_ = c.Close()
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}
