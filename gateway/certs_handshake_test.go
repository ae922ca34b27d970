package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TLS alerts the tests expect (RFC 8446, 6).
const (
	alertBadCertificate      = 42
	alertCertificateRequired = 116
	alertNoApplicationProto  = 120
)

// TestIngressHandshakeRejections makes real QUIC handshakes to west's
// gateway listener with bad client credentials: each must fail, and the
// gateway must never accept the connection.
func TestIngressHandshakeRejections(t *testing.T) {
	f := newFixture(t)
	east, west := f.clusters["east"], f.clusters["west"]
	westAddr := west.udp.LocalAddr().String()
	bundles := f.allBundles()
	now := time.Now()

	north, err := certs.NewCA(certs.TrustDomainFor("north", domain), time.Hour, now)
	require.NoError(t, err)
	// east's CA key material with west's trust domain: leaves claiming
	// west that chain to east's CA only.
	eastAsWest := &certs.CA{Cert: east.ca.Cert, Key: east.ca.Key, TrustDomain: certs.TrustDomainFor("west", domain)}

	leaf := func(ca *certs.CA, component string, lifetime time.Duration, at time.Time) *tls.Certificate {
		c, err := ca.NewLeafKeyPair(component, lifetime, at)
		require.NoError(t, err)
		return c
	}
	client := func(c *tls.Certificate, protos ...string) *tls.Config {
		if len(protos) == 0 {
			protos = []string{tunnel.ALPN}
		}
		return certs.ClientConfig(certs.TLSOptions{Source: certs.NewStaticSource(c), Bundles: bundles, NextProtos: protos})
	}

	tests := []struct {
		name  string
		cfg   *tls.Config
		alert uint8
	}{
		{
			name:  "no client certificate",
			cfg:   &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, NextProtos: []string{tunnel.ALPN}},
			alert: alertCertificateRequired,
		},
		// The reasons behind each bad_certificate alert are asserted on the
		// server side by certs' TestHandshakeFailures; here the point is
		// that the gateway's real QUIC listener refuses them all.
		{name: "expired leaf", cfg: client(leaf(east.ca, "gateway", time.Hour, now.Add(-3*time.Hour))), alert: alertBadCertificate},
		{name: "self-signed leaf", cfg: client(certsSelfSigned(t, "spiffe://"+east.ca.TrustDomain+"/gateway")), alert: alertBadCertificate},
		{name: "leaf claiming west signed by east's CA", cfg: client(leaf(eastAsWest, "gateway", time.Hour, now)), alert: alertBadCertificate},
		{name: "trust domain not a member", cfg: client(leaf(north, "gateway", time.Hour, now)), alert: alertBadCertificate},
		{name: "member identity but not a gateway", cfg: client(leaf(east.ca, "dnsshim", time.Hour, now)), alert: alertBadCertificate},
		{name: "wrong ALPN", cfg: client(leaf(east.ca, "gateway", time.Hour, now), "h3"), alert: alertNoApplicationProto},
		{name: "no ALPN", cfg: noALPN(client(leaf(east.ca, "gateway", time.Hour, now))), alert: alertNoApplicationProto},
	}
	accepted := west.gw.metrics.handshakes.WithLabelValues("server", "ok")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(accepted)
			conn, err := certsDial(t.Context(), westAddr, tc.cfg)
			err = certsRejected(t, conn, err)
			certsCryptoError(t, err, tc.alert)
			require.Equal(t, before, testutil.ToFloat64(accepted), "west accepted the connection")
		})
	}

	// Control: the same path with good credentials works, and the
	// verified peer identity reaches ingress (the header's source cluster
	// must match it).
	conn, err := certsDial(t.Context(), westAddr, client(leaf(east.ca, "gateway", time.Hour, now)))
	require.NoError(t, err)
	defer conn.CloseWithError(0, "")
	require.NoError(t, certsTunnelRequest(t.Context(), conn, "hello"))
	s, err := conn.OpenStreamSync(t.Context())
	require.NoError(t, err)
	require.NoError(t, tunnel.WriteFrame(s, header("west")))
	resp, err := tunnel.ReadResponse(s, 0)
	require.NoError(t, err)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_FORBIDDEN, resp.GetCode())
}

// TestIngressHasNoPlaintextFallback sends plaintext to the gateway's port:
// QUIC without a TLS handshake carries nothing, so nothing comes back and
// no connection is accepted.
func TestIngressHasNoPlaintextFallback(t *testing.T) {
	f := newFixture(t)
	west := f.clusters["west"]
	accepted := west.gw.metrics.handshakes.WithLabelValues("server", "ok")
	before := testutil.ToFloat64(accepted)
	conn, err := dialUDP(west.udp.LocalAddr().String())
	require.NoError(t, err)
	defer conn.Close()
	// A stream header frame as raw UDP, then 1200 bytes of garbage (the
	// size of a QUIC Initial, so it is not dropped for being short).
	frame := []byte{0x00, 0x03, 0x08, 0x01, 0x12}
	_, err = conn.Write(frame)
	require.NoError(t, err)
	_, err = conn.Write(make([]byte, 1200))
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(500*time.Millisecond)))
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	// quic-go may answer a long-header garbage packet with a version
	// negotiation packet; it never answers with application data.
	if err == nil {
		require.Less(t, n, 100, "unexpected plaintext answer of %d bytes", n)
	}
	require.Equal(t, before, testutil.ToFloat64(accepted))
}

// TestEgressHandshakeRejections points east's view of west's gateway at a
// rogue QUIC server and lets east's gateway dial it: every bad server
// identity must fail the dial.
func TestEgressHandshakeRejections(t *testing.T) {
	f := newFixture(t)
	east, west := f.clusters["east"], f.clusters["west"]
	now := time.Now()
	eastAsWest := &certs.CA{Cert: east.ca.Cert, Key: east.ca.Key, TrustDomain: west.ca.TrustDomain}
	north, err := certs.NewCA(certs.TrustDomainFor("north", domain), time.Hour, now)
	require.NoError(t, err)
	leaf := func(ca *certs.CA, component string, lifetime time.Duration, at time.Time) *tls.Certificate {
		c, err := ca.NewLeafKeyPair(component, lifetime, at)
		require.NoError(t, err)
		return c
	}
	server := func(c *tls.Certificate, protos ...string) *tls.Config {
		if len(protos) == 0 {
			protos = []string{tunnel.ALPN}
		}
		return certs.ServerConfig(certs.TLSOptions{Source: certs.NewStaticSource(c), Bundles: f.allBundles(), NextProtos: protos})
	}
	tests := []struct {
		name   string
		server *tls.Config
		want   string
	}{
		{"expired leaf", server(leaf(west.ca, "gateway", time.Hour, now.Add(-3*time.Hour))), "expired"},
		{"self-signed leaf", server(certsSelfSigned(t, "spiffe://"+west.ca.TrustDomain+"/gateway")), "unknown authority"},
		{"west's identity signed by east's CA", server(leaf(eastAsWest, "gateway", time.Hour, now)), "unknown authority"},
		{"east's gateway answering for west", server(leaf(east.ca, "gateway", time.Hour, now)), "is not spiffe://west.clusterset.local/gateway"},
		{"trust domain not a member", server(leaf(north, "gateway", time.Hour, now)), "unknown trust domain"},
		{"wrong ALPN", server(leaf(west.ca, "gateway", time.Hour, now), "h3"), "no application protocol"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := certsRogueServer(t, tc.server)
			certsPublish(f, func(e map[string]*causewayv1.Entry) {
				e["gateways/west/gw-0"] = &causewayv1.Entry{Key: "gateways/west/gw-0", Record: &causewayv1.Entry_Gateway{
					Gateway: &causewayv1.GatewayRecord{Cluster: "west", Instance: "gw-0", Addresses: []string{addr}}}}
			})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			conn, err := east.gw.conn(ctx, "west")
			require.Error(t, err, "east connected to a bad west")
			require.Nil(t, conn)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func dialUDP(addr string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	return net.DialUDP("udp", nil, ua)
}

// noALPN returns cfg offering no application protocol.
func noALPN(cfg *tls.Config) *tls.Config {
	cfg.NextProtos = nil
	return cfg
}
