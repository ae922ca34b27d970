package federator

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/static"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/secureetcd"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// adminCluster is one cluster of an admin test: its CA and a running
// federator with a static source.
type adminCluster struct {
	name string
	td   string
	ca   *certs.CA
	fed  *Federator
	stop func() // stops the federator (and its gateway announcement); idempotent
}

// startAdminCluster runs a federator for name (VIPs from 10.0.idx.0/24)
// exporting the YAML exports, until the test ends or stop is called.
func startAdminCluster(t *testing.T, cli *clientv3.Client, name string, idx int, exports string) *adminCluster {
	t.Helper()
	return startAdminClusterWith(t, cli, name, idx, exports)
}

// startSecureAdminCluster is startAdminCluster on an etcd with TLS and
// auth on: the federator writes as its cluster's own etcd user.
func startSecureAdminCluster(t *testing.T, s *secureetcd.Secure, name string, idx int, exports string) *adminCluster {
	t.Helper()
	return startAdminClusterWith(t, s.ClusterClient(t, name), name, idx, exports)
}

func startAdminClusterWith(t *testing.T, cli *clientv3.Client, name string, idx int, exports string) *adminCluster {
	t.Helper()
	td := certs.TrustDomainFor(name, "clusterset.local")
	ca, err := certs.NewCA(td, time.Hour, time.Now())
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), name+".yaml")
	require.NoError(t, os.WriteFile(path, []byte(exports), 0o644))
	f, err := New(Config{Cluster: name, Region: "r-" + name, Zone: "z-" + name, TrustDomain: td,
		VIPRanges:   []netip.Prefix{netip.MustParsePrefix("10.0." + strconv.Itoa(idx) + ".0/24")},
		Authorities: certs.AuthoritiesDER([]*x509.Certificate{ca.Cert}), Instance: name + "-0"}, store.New(cli, store.Options{}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx, &static.Source{Path: path, Cluster: name, Interval: 20 * time.Millisecond})
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return &adminCluster{name: name, td: td, ca: ca, fed: f, stop: stop}
}

// announceGateway keeps a gateway record of c until c stops.
func (c *adminCluster) announceGateway(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	key := sha256.Sum256([]byte("test gateway of " + c.name))
	go func() {
		defer close(done)
		_ = c.fed.announceGateway(ctx, "gw-0", []string{addr}, key[:], 5*time.Second, nil)
	}()
	prev := c.stop
	c.stop = func() { cancel(); <-done; prev() }
	t.Cleanup(func() { cancel(); <-done })
}

// serve starts c's federator gRPC server (Catalog and Admin) on
// 127.0.0.1:0 with mutual TLS, as devenv does, and returns its address.
func (c *adminCluster) serve(t *testing.T, o AdminOptions) string {
	t.Helper()
	cert, err := c.ca.NewLeafKeyPair("federator", time.Hour, time.Now())
	require.NoError(t, err)
	own := certs.NewBundleSet()
	own.Set(c.td, []*x509.Certificate{c.ca.Cert})
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(certs.ServerConfig(certs.TLSOptions{
		Source: certs.NewStaticSource(cert), Bundles: own, Authorize: certs.AuthorizeTrustDomain(c.td), NextProtos: []string{"h2"},
	}))))
	causewayv1.RegisterCatalogServer(srv, c.fed.CatalogServer())
	causewayv1.RegisterAdminServer(srv, c.fed.AdminServer(o))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return ln.Addr().String()
}

// dial connects to c's federator at addr as component, a leaf issued by
// issuer (c's CA unless the test wants a foreign identity).
func (c *adminCluster) dial(t *testing.T, addr string, issuer *certs.CA, component string) *grpc.ClientConn {
	t.Helper()
	cert, err := issuer.NewLeafKeyPair(component, time.Hour, time.Now())
	require.NoError(t, err)
	bundles := certs.NewBundleSet()
	bundles.Set(c.td, []*x509.Certificate{c.ca.Cert})
	fedID, err := certs.NewID(c.td, "federator")
	require.NoError(t, err)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(certs.ClientConfig(certs.TLSOptions{
		Source: certs.NewStaticSource(cert), Bundles: bundles, Authorize: certs.AuthorizeID(fedID), NextProtos: []string{"h2"},
	}))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// adminWaitView waits until cond holds for f's view.
func adminWaitView(t *testing.T, f *Federator, what string, cond func(v *catalog.View) bool) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		ch := f.Feed().Changed()
		if cond(f.Feed().View()) {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// tcpProxy forwards TCP connections to a target until closed, so a test
// can cut a client off from its server without stopping the server.
type tcpProxy struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex // guards conns and closed
	conns  []net.Conn
	closed bool
	once   sync.Once
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln}
	p.wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				in.Close()
				out.Close()
				return
			}
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(out, in); out.Close() })
			p.wg.Go(func() { _, _ = io.Copy(in, out); in.Close() })
		}
	})
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

// close stops accepting, cuts every connection and waits; idempotent.
func (p *tcpProxy) close() {
	p.once.Do(func() {
		p.ln.Close()
		p.mu.Lock()
		p.closed = true
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
}

const (
	adminEchoClockExports = `version: 1
services:
- namespace: demo
  name: echo
  ports: [{name: http, port: 8080}]
  endpoints: [{address: 10.1.0.5, zone: z-east}, {address: 10.1.0.6, zone: z-east-b}]
- namespace: demo
  name: clock
  ports: [{name: http, port: 8080}]
  endpoints: [{address: 10.1.0.7}]
`
	adminEchoExports = `version: 1
services:
- namespace: demo
  name: echo
  ports: [{name: http, port: 8080}]
  endpoints: [{address: 10.2.0.5}]
`
)

// trustEachOther makes every cluster trust every other one's published
// bundle, pinned to its CA's fingerprint, as an operator's
// `causeway clusters trust` would.
func trustEachOther(t *testing.T, clusters ...*adminCluster) {
	t.Helper()
	for _, a := range clusters {
		for _, b := range clusters {
			if a == b {
				continue
			}
			var rec *causewayv1.TrustBundle
			require.Eventually(t, func() bool { rec = a.fed.trust.publishedRecord(b.name); return rec != nil }, 10*time.Second, 10*time.Millisecond,
				"%s never saw %s's bundle", a.name, b.name)
			_, _, err := a.fed.trust.pin(b.name, rec, certs.Fingerprint(b.ca.Cert))
			require.NoError(t, err, "%s trusts %s", a.name, b.name)
			a.fed.republishTrust()
		}
	}
}
