package embedetcd

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
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
}

// Server is a running embedded etcd.
type Server struct {
	etcd     *embed.Etcd
	endpoint string
}

// Start starts the member and waits until it serves.
func Start(ctx context.Context, c Config) (*Server, error) {
	if c.Dir == "" {
		return nil, fmt.Errorf("start etcd: data dir required")
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	clientURL, err := listenURL(c.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("start etcd client listener: %w", err)
	}
	peerURL, err := listenURL(c.PeerAddr)
	if err != nil {
		return nil, fmt.Errorf("start etcd peer listener: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "causeway"
	cfg.Dir = c.Dir
	cfg.ListenClientUrls = []url.URL{*clientURL}
	cfg.AdvertiseClientUrls = []url.URL{*clientURL}
	cfg.ListenPeerUrls = []url.URL{*peerURL}
	cfg.AdvertisePeerUrls = []url.URL{*peerURL}
	cfg.InitialCluster = cfg.Name + "=" + peerURL.String()
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start etcd on %s: %w", clientURL.Host, err)
	}
	timer := time.NewTimer(c.StartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("start etcd: %w", err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("start etcd: not ready after %s", c.StartTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("start etcd: %w", ctx.Err())
	}
	return &Server{etcd: e, endpoint: e.Clients[0].Addr().String()}, nil
}

// listenURL turns host:port (port may be 0) into an http URL whose port is
// fixed: a port-0 address is resolved by binding and releasing it, since
// etcd needs the same URL to listen on and to advertise.
func listenURL(addr string) (*url.URL, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", addr, err)
	}
	if port == "0" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		port = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
	}
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}, nil
}

// Endpoint is the client host:port.
func (s *Server) Endpoint() string { return s.endpoint }

// Client returns a new client of the server; the caller closes it.
func (s *Server) Client() (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{s.endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %s: %w", s.endpoint, err)
	}
	return cli, nil
}

// Close stops the server and waits for it. Safe to call more than once.
func (s *Server) Close() { s.etcd.Close() }
