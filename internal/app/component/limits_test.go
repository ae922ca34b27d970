package component

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// startFederatorForLimits runs a federator of south on loopback against a
// real embedded etcd with a Watch cap of watchCap, and returns its gRPC and
// bootstrap addresses and its CA.
func startFederatorForLimits(t *testing.T, watchCap int) (grpcAddr, bootAddr string, ca *certs.CA) {
	t.Helper()
	srv, _ := etcdtest.Start(t)
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	ca, err := certs.InitCADir(caDir, certs.TrustDomainFor("south", DefaultDomain), 24*time.Hour, time.Now(), false)
	require.NoError(t, err)
	exports, tokens := filepath.Join(dir, "exports.yaml"), filepath.Join(dir, "tokens.yaml")
	writeFile(t, exports, "version: 1\nservices: []\n")
	writeFile(t, tokens, "gw-token-0123456789abcdef0123456789: gateway\n")
	c := &FederatorConfig{Identity: Identity{Cluster: "south"}, Etcd: EtcdConfig{Endpoints: []string{srv.Endpoint()}},
		Listen: FederatorListenConfig{GRPC: "127.0.0.1:0", Bootstrap: "127.0.0.1:0", HTTP: "127.0.0.1:0"},
		CADir:  caDir, VIPRanges: []string{"127.99.0.0/24"}, Exports: ExportsConfig{Static: exports},
		Signing: SigningConfig{JoinTokensFile: tokens}, Limits: FederatorLimitsConfig{WatchStreamsPerIdentity: watchCap}}
	c.defaults()
	require.NoError(t, c.validate())
	var logs syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunFederator(ctx, c, slog.New(slog.NewTextHandler(&logs, nil))) }()
	t.Cleanup(func() { cancel(); <-done })
	started := regexp.MustCompile(`msg="federator started" .*grpc=(\S+) bootstrap=(\S+)`)
	require.Eventually(t, func() bool {
		m := started.FindStringSubmatch(logs.String())
		if m == nil {
			return false
		}
		grpcAddr, bootAddr = m[1], m[2]
		return true
	}, 20*time.Second, 20*time.Millisecond, "federator did not start; log:\n%s", logs.String())
	return grpcAddr, bootAddr, ca
}

// openWatch opens a Catalog.Watch stream on conn and returns it with the
// first answer's error (nil: a snapshot arrived).
func openWatch(t *testing.T, conn *grpc.ClientConn) (context.CancelFunc, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	stream, err := causewayv1.NewCatalogClient(conn).Watch(ctx, &causewayv1.WatchRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	return cancel, err
}

// TestSecurityF11_SilentConnectionsDropped_WatchCap replays F11 against a
// real federator (embedded etcd, real TLS listeners). Before, 100 silent
// TCP connections to each gRPC port were still open after 40 s (grpc-go's
// handshake timeout is 120 s) and one dnsshim certificate opened 2,000
// Watch streams. Now silent connections to both listeners are closed after
// the 5 s handshake timeout, and one identity gets at most its cap of
// Watch streams (RESOURCE_EXHAUSTED beyond it) while other identities, and
// the same one after a stream ends, are served.
func TestSecurityF11_SilentConnectionsDropped_WatchCap(t *testing.T) {
	const watchCap = 3
	grpcAddr, bootAddr, ca := startFederatorForLimits(t, watchCap)

	var silent []net.Conn
	for _, addr := range []string{grpcAddr, bootAddr} {
		for range 20 {
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			silent = append(silent, c)
		}
	}
	start := time.Now()

	td := certs.TrustDomainFor("south", DefaultDomain)
	dial := func(component string) *grpc.ClientConn {
		leaf, err := ca.NewLeafKeyPair(component, time.Hour, time.Now())
		require.NoError(t, err)
		b := certs.NewBundleSet()
		b.Set(td, []*x509.Certificate{ca.Cert})
		conn, err := DialFederator(grpcAddr, certs.NewStaticSource(leaf), b, certs.ID{TrustDomain: td, Path: "/federator"})
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// One dnsshim credential, on one connection and on a second one.
	dns1, dns2 := dial("dnsshim"), dial("dnsshim")
	var cancels []context.CancelFunc
	for i := range watchCap {
		conn := dns1
		if i%2 == 1 {
			conn = dns2
		}
		cancel, err := openWatch(t, conn)
		t.Cleanup(cancel)
		require.NoError(t, err, "watch %d within the cap", i)
		cancels = append(cancels, cancel)
	}
	_, err := openWatch(t, dns2)
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "already holds 3 watch streams")
	// Another identity is not affected.
	cancel, err := openWatch(t, dial("gateway"))
	t.Cleanup(cancel)
	require.NoError(t, err)
	// A stream that ends gives its slot back.
	cancels[0]()
	require.Eventually(t, func() bool {
		cancel, err := openWatch(t, dns1)
		t.Cleanup(cancel)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)

	// Every silent connection has been closed by the server.
	buf := make([]byte, 1)
	for i, c := range silent {
		left := 15*time.Second - time.Since(start)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(max(left, time.Second))))
		_, err := c.Read(buf)
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "silent connection %d still open after %s", i, time.Since(start))
		require.Error(t, err)
		if err != io.EOF {
			t.Logf("connection %d: %v", i, err)
		}
	}
}

// TestClientIdentityRenewalsUseNoTokenUses: a component whose join token
// has a single use obtains its certificate and then renews it again and
// again: each renewal proves the current leaf, so it uses nothing.
func TestClientIdentityRenewalsUseNoTokenUses(t *testing.T) {
	auth, err := federator.NewJoinTokenAuthenticatorFromConfig(federator.JoinTokenConfig{
		Tokens: map[string]federator.JoinToken{gatewayToken: {Component: "gateway", MaxUses: 1}}})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	addr, caDir := startCertsServerWith(t, federator.CertsServerConfig{Authenticator: auth, Lifetime: 3 * time.Second, Registerer: reg})
	tokenFile := filepath.Join(t.TempDir(), "gw.token")
	writeFile(t, tokenFile, gatewayToken)
	c := &ClientConfig{Identity: Identity{Cluster: "south", Domain: DefaultDomain}, Bootstrap: addr, CAFile: filepath.Join(caDir, "bundle.crt"), TokenFile: tokenFile}
	ctx, cancel := context.WithCancel(context.Background())
	ci, err := newClientIdentity(ctx, c, "gateway", slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- ci.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	issued := func(kind string) float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == "causeway_federator_certs_issued_total" && m.GetLabel()[0].GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	// Leaves of 3s renew every 2s: two renewals within 10s.
	require.Eventually(t, func() bool { return issued("renewal") >= 2 }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, 1.0, issued("first"), "only the first certificate used the token")
	cert, err := ci.cert.Certificate()
	require.NoError(t, err)
	require.True(t, time.Now().Before(cert.Leaf.NotAfter))
}

// TestLimitsConfigFromFile: the limits of the federator and the DNS shim's
// rate limit are read from their files and checked.
func TestLimitsConfigFromFile(t *testing.T) {
	f, err := LoadFederatorConfig(writeConfig(t, goodFederator+"limits: {handshakeTimeout: 3s, watchStreamsPerIdentity: 7, streamsPerConnection: 20}\n"))
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, f.Limits.handshakeTimeout())
	require.Equal(t, 7, f.Limits.WatchStreamsPerIdentity)
	require.Equal(t, uint32(20), f.Limits.StreamsPerConnection)
	_, err = LoadFederatorConfig(writeConfig(t, goodFederator+"limits: {watchStreamsPerIdentity: -1}\n"))
	require.ErrorContains(t, err, "limits.watchStreamsPerIdentity: want a positive number")
	_, err = LoadFederatorConfig(writeConfig(t, goodFederator+"limits: {watchStreams: 1}\n"))
	require.ErrorContains(t, err, "watchStreams")

	const shim = "cluster: east\nfederator: 10.0.0.1:7443\nbootstrap: 10.0.0.1:7444\ncaFile: a\ntokenFile: b\n"
	d, err := LoadDNSShimConfig(writeConfig(t, shim+"rateLimit: {qps: 50, burst: 80, ipv4PrefixLength: 24}\n"))
	require.NoError(t, err)
	r := d.RateLimit.dnsRateLimit()
	require.Equal(t, 50.0, r.QPS)
	require.Equal(t, 80.0, r.Burst)
	require.Equal(t, 24, r.IPv4PrefixLen)
	_, err = LoadDNSShimConfig(writeConfig(t, shim+"rateLimit: {ipv4PrefixLength: 33}\n"))
	require.ErrorContains(t, err, "rateLimit:")
}
