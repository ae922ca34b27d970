package admin

import (
	"net"
	"sync"
	"time"
)

// Limits bound what one client can hold of an admin server. The
// endpoints are unauthenticated (who may reach them is a matter of the
// listen address and the network, docs/components.md "Admin HTTP
// endpoints"), so every
// connection is bounded in time and their number is capped: a client that
// opens connections and goes silent cannot exhaust the process's file
// descriptors (in `causeway dev` the admin servers share a process with
// etcd, gateways and DNS shims).
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers. If zero, 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request. If zero, 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response. If zero, 30s.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long. If zero,
	// 10s (below Prometheus's usual 15s scrape interval, so a scraper
	// reconnects instead of holding a connection forever).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request headers. If zero, 16 KiB.
	MaxHeaderBytes int
	// MaxConns caps concurrent connections; one beyond it is closed as
	// soon as it is accepted. If zero, 64.
	MaxConns int
}

// DefaultLimits are the limits of a server built without WithLimits.
var DefaultLimits = Limits{}.withDefaults()

func (l Limits) withDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, 5*time.Second)
	def(&l.ReadTimeout, 10*time.Second)
	def(&l.WriteTimeout, 30*time.Second)
	def(&l.IdleTimeout, 10*time.Second)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 16 << 10
	}
	if l.MaxConns <= 0 {
		l.MaxConns = 64
	}
	return l
}

// Option configures a Server.
type Option func(*Server)

// WithLimits replaces DefaultLimits; zero fields keep their defaults.
func WithLimits(l Limits) Option {
	return func(s *Server) { s.limits = l.withDefaults() }
}

// limitListener closes connections accepted beyond max concurrent ones,
// so the excess costs a descriptor only for an instant (blocking Accept
// instead would leave them in the kernel's backlog, unanswered).
type limitListener struct {
	net.Listener
	mu     sync.Mutex // guards active
	active int
	max    int
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	return &limitListener{Listener: ln, max: max}
}

// Accept returns the next connection within the limit.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		ok := l.active < l.max
		if ok {
			l.active++
		}
		l.mu.Unlock()
		if ok {
			return &limitedConn{Conn: c, release: l.release}, nil
		}
		_ = c.Close()
	}
}

func (l *limitListener) release() {
	l.mu.Lock()
	l.active--
	l.mu.Unlock()
}

// limitedConn gives its slot back when closed (once).
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
