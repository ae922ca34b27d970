package embedetcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Config configures the embedded server.
type Config struct {
	// Dir holds the member's data. Required.
	Dir string
	// ClientAddr is the host:port clients use. If empty, 127.0.0.1:0.
	ClientAddr string
	// PeerAddr is the host:port of the peer listener. If empty, 127.0.0.1:0.
	PeerAddr string
	// StartTimeout bounds the wait for the member to be ready. If zero, 30s.
	StartTimeout time.Duration
	// TLS, when set, makes the client listener serve TLS only (https) with
	// TLS.CertFile and TLS.KeyFile; clients verify it with TLS.CAFile
	// (see NewTLSFiles). If nil, clients speak plain HTTP/2.
	TLS *TLSFiles
	// BcryptCost is the cost etcd hashes user passwords with once auth is
	// on. If zero, etcd's default (10).
	BcryptCost uint
}

// Server is a running embedded etcd.
type Server struct {
	etcd      *embed.Etcd
	endpoint  string
	tls       *TLSFiles // nil: plain
	closeOnce sync.Once
}

// Start starts the member and waits until it serves. Ports given as 0 are
// chosen here; when both are, they are reserved until etcd has bound them
// (see portReservation), and a probed port that another process took first
// is chosen again.
func Start(ctx context.Context, c Config) (*Server, error) {
	if c.Dir == "" {
		return nil, fmt.Errorf("start etcd: data dir required")
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	const attempts = 3
	for attempt := 1; ; attempt++ {
		s, err := startOnce(ctx, c)
		if err == nil || attempt == attempts || !isAddrInUse(err) ||
			!(portIsZero(c.ClientAddr) || portIsZero(c.PeerAddr)) {
			return s, err
		}
	}
}

func startOnce(ctx context.Context, c Config) (*Server, error) {
	clientURL, peerURL, reusePort, release, err := listenURLs(c.ClientAddr, c.PeerAddr)
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	defer release() // once StartEtcd returns, its listeners hold the ports
	if c.TLS != nil {
		clientURL.Scheme = "https"
	}
	cfg := newConfig("causeway", c.Dir, clientURL, peerURL)
	cfg.InitialCluster = cfg.Name + "=" + peerURL.String()
	cfg.SocketOpts.ReusePort = reusePort
	if c.TLS != nil {
		cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = c.TLS.CertFile, c.TLS.KeyFile
	}
	if c.BcryptCost != 0 {
		cfg.BcryptCost = c.BcryptCost
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start etcd on %s: %w", clientURL.Host, err)
	}
	if err := waitReady(ctx, e, c.StartTimeout); err != nil {
		e.Close()
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	return &Server{etcd: e, endpoint: e.Clients[0].Addr().String(), tls: c.TLS}, nil
}

// newConfig is the embed config of one quiet member listening on and
// advertising clientURL and peerURL; the caller sets the initial cluster.
func newConfig(name, dir string, clientURL, peerURL url.URL) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = name
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	return cfg
}

// waitReady waits until e serves clients, fails, or timeout or ctx ends.
func waitReady(ctx context.Context, e *embed.Etcd, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		if err == nil {
			err = errors.New("stopped before it was ready")
		}
		return err
	case <-timer.C:
		return fmt.Errorf("not ready after %s", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// listenURLs turns the client and peer host:port (port may be 0) into
// http URLs whose ports are fixed, since etcd needs the same URL to listen
// on and to advertise. When both ports are 0 they are reserved: reusePort
// says etcd must bind with SO_REUSEPORT, and release frees the
// reservations (call it once etcd has bound, or failed to).
func listenURLs(clientAddr, peerAddr string) (client, peer url.URL, reusePort bool, release func(), err error) {
	release = func() {}
	if canReserve(clientAddr) && canReserve(peerAddr) {
		ch, _, _ := net.SplitHostPort(orLoopback(clientAddr))
		ph, _, _ := net.SplitHostPort(orLoopback(peerAddr))
		cr, err := reservePort(ch)
		if err != nil {
			return client, peer, false, release, fmt.Errorf("client listener: %w", err)
		}
		pr, err := reservePort(ph)
		if err != nil {
			cr.Close()
			return client, peer, false, release, fmt.Errorf("peer listener: %w", err)
		}
		release = func() { cr.Close(); pr.Close() }
		return cr.URL(), pr.URL(), cr.held() || pr.held(), release, nil
	}
	if client, err = probedURL(clientAddr); err != nil {
		return client, peer, false, release, fmt.Errorf("client listener: %w", err)
	}
	if peer, err = probedURL(peerAddr); err != nil {
		return client, peer, false, release, fmt.Errorf("peer listener: %w", err)
	}
	return client, peer, false, release, nil
}

// probedURL turns host:port into an http URL, resolving port 0 by binding
// and releasing it (racy: see portReservation).
func probedURL(addr string) (url.URL, error) {
	host, port, err := net.SplitHostPort(orLoopback(addr))
	if err != nil {
		return url.URL{}, fmt.Errorf("parse %q: %w", addr, err)
	}
	if port == "0" {
		p, err := probePort(host)
		if err != nil {
			return url.URL{}, err
		}
		port = strconv.Itoa(p)
	}
	return url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}, nil
}

// portIsZero reports whether addr asks for a port to be chosen (it is
// empty or its port is 0).
func portIsZero(addr string) bool {
	_, port, err := net.SplitHostPort(orLoopback(addr))
	return err == nil && port == "0"
}

// canReserve reports whether addr's port is to be chosen on an IP literal.
func canReserve(addr string) bool {
	host, _, _ := net.SplitHostPort(orLoopback(addr))
	return portIsZero(addr) && net.ParseIP(host) != nil
}

func orLoopback(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

// Endpoint is the client host:port.
func (s *Server) Endpoint() string { return s.endpoint }

// TLS returns the server's TLS files, nil when it serves plain HTTP/2.
func (s *Server) TLS() *TLSFiles { return s.tls }

// Client returns a new client of the server (over TLS when it serves
// TLS), without a user; the caller closes it.
func (s *Server) Client() (*clientv3.Client, error) { return s.ClientAs("", "") }

// ClientAs returns a new client of the server that authenticates as user
// with password (none when user is empty); the caller closes it.
func (s *Server) ClientAs(user, password string) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   []string{s.endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		Username:    user,
		Password:    password,
	}
	if s.tls != nil {
		t, err := ClientTLS(s.tls.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.TLS = t
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %s: %w", s.endpoint, err)
	}
	return cli, nil
}

// Close stops the server and waits for it. Safe to call more than once.
func (s *Server) Close() { s.closeOnce.Do(s.etcd.Close) }
