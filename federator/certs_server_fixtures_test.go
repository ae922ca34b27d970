package federator

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	certsEastTD = "east.clusterset.local"
	certsWestTD = "west.clusterset.local"
	// Join tokens of the tests, one per component.
	gatewayToken = "gateway-join-token-0123456789abcdef"
	dnsshimToken = "dnsshim-join-token-0123456789abcdef"
	adminToken   = "admin-join-token-0123456789abcdefgh"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// certsEnv is a running Certs service of cluster east over TLS on
// 127.0.0.1, and what a client needs to call it.
type certsEnv struct {
	ca       *certs.CA
	server   *CertsServer
	reg      *prometheus.Registry
	addr     string
	fedID    certs.ID
	bundles  *certs.BundleSet
	clientTL *tls.Config // verifies the federator, presents no certificate
}

// overrideAuth answers token with p and delegates every other token.
type overrideAuth struct {
	Authenticator
	token string
	p     Principal
}

func (a overrideAuth) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == a.token {
		return a.p, nil
	}
	return a.Authenticator.Authenticate(ctx, token)
}

// certsEnvOptions tweak startCertsEnv.
type certsEnvOptions struct {
	auth Authenticator // default: join tokens for gateway, dnsshim, admin
	// serverTLS builds the server's TLS configuration from its options;
	// default certs.BootstrapServerConfig. nil serverTLS with plaintext
	// true serves without TLS.
	serverTLS func(certs.TLSOptions) *tls.Config
	plaintext bool
	// limits of failures per source; zero: a burst of 1000, so that table
	// tests of refusals are not cut short by the limit.
	limits SignLimits
	// ca signs; default a new CA of east.
	ca *certs.CA
}

// startCertsEnv serves a CertsServer for east until the test ends.
func startCertsEnv(t *testing.T, o certsEnvOptions) *certsEnv {
	t.Helper()
	ca, err := o.ca, error(nil)
	if ca == nil {
		ca, err = certs.NewCA(certsEastTD, 24*time.Hour, time.Now())
		require.NoError(t, err)
	}
	if o.auth == nil {
		tokens, err := NewJoinTokenAuthenticator(map[string]string{gatewayToken: "gateway", dnsshimToken: "dnsshim"})
		require.NoError(t, err)
		// adminToken stands for an authenticator that binds a credential
		// to a privileged component (join tokens refuse to).
		o.auth = overrideAuth{Authenticator: tokens, token: adminToken, p: Principal{Name: "admin-token", Component: "admin"}}
	}
	if o.limits == (SignLimits{}) {
		o.limits.Burst = 1000
	}
	reg := prometheus.NewRegistry()
	srv, err := NewCertsServer(CertsServerConfig{Cluster: "east", TrustDomain: certsEastTD, CA: ca,
		Lifetime: time.Hour, Authenticator: o.auth, Logger: quietLog, Registerer: reg, Limits: o.limits})
	require.NoError(t, err)

	fedCert, err := ca.NewLeafKeyPair("federator", time.Hour, time.Now())
	require.NoError(t, err)
	bundles := certs.NewBundleSet()
	bundles.Set(certsEastTD, []*x509.Certificate{ca.Cert})
	fedID := certs.ID{TrustDomain: certsEastTD, Path: "/federator"}
	var opts []grpc.ServerOption
	if !o.plaintext {
		mk := o.serverTLS
		if mk == nil {
			mk = certs.BootstrapServerConfig
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(mk(certs.TLSOptions{
			Source: certs.NewStaticSource(fedCert), Bundles: bundles, NextProtos: []string{"h2"}}))))
	}
	gs := grpc.NewServer(opts...)
	causewayv1.RegisterCertsServer(gs, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() { _ = gs.Serve(ln) })
	t.Cleanup(func() { gs.Stop(); wg.Wait() })
	return &certsEnv{ca: ca, server: srv, reg: reg, addr: ln.Addr().String(), fedID: fedID, bundles: bundles,
		clientTL: certs.ClientConfig(certs.TLSOptions{Bundles: bundles, Authorize: certs.AuthorizeID(fedID), NextProtos: []string{"h2"}})}
}

// conn dials the env over TLS (or plaintext) until the test ends.
func (e *certsEnv) conn(t *testing.T, plaintext bool) *grpc.ClientConn {
	t.Helper()
	creds := credentials.NewTLS(e.clientTL)
	if plaintext {
		creds = insecure.NewCredentials()
	}
	cc, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return cc
}

// connFrom dials the env over TLS from the local address ip (any
// 127.0.0.0/8 address on Linux), so a test can be several sources.
func (e *certsEnv) connFrom(t *testing.T, ip string) *grpc.ClientConn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	cc, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(e.clientTL)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }))
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return cc
}

// csrFor returns a fresh P-256 key and a CSR for id.
func csrFor(t *testing.T, td, component string) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key := mustP256(t)
	der, err := certs.NewCSR(key, certs.ID{TrustDomain: td, Path: "/" + component})
	require.NoError(t, err)
	return der, key
}

func callCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
