package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/causeway-mesh/causeway/certs"
)

func TestHandshakeSuccess(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name         string
		client, srv  certs.TLSOptions
		wantProtocol string
	}{
		{"authorized by trust domain and id", f.clientOpts(), f.serverOpts(), alpn},
		{
			"nil authorizers and no ALPN",
			certs.TLSOptions{Source: certs.NewStaticSource(f.eastGW), Bundles: f.bundles},
			certs.TLSOptions{Source: certs.NewStaticSource(f.westGW), Bundles: f.bundles},
			"",
		},
		{
			"member authorizers",
			certs.TLSOptions{Source: certs.NewStaticSource(f.eastGW), Bundles: f.bundles, Authorize: certs.AuthorizeMember("gateway"), NextProtos: []string{"x", alpn}},
			certs.TLSOptions{Source: certs.NewStaticSource(f.westGW), Bundles: f.bundles, Authorize: certs.AuthorizeMember("gateway"), NextProtos: []string{alpn}},
			alpn,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := handshake(t, certs.ClientConfig(tc.client), certs.ServerConfig(tc.srv))
			require.NoError(t, r.clientErr)
			require.NoError(t, r.serverErr)

			require.Equal(t, uint16(tls.VersionTLS13), r.client.Version)
			require.Equal(t, tc.wantProtocol, r.client.NegotiatedProtocol)
			require.Equal(t, tc.wantProtocol, r.server.NegotiatedProtocol)

			serverSeen, err := certs.PeerID(r.server)
			require.NoError(t, err)
			require.Equal(t, f.eastID, serverSeen)
			clientSeen, err := certs.PeerID(r.client)
			require.NoError(t, err)
			require.Equal(t, f.westID, clientSeen)
		})
	}
}

// Over 80 lines: a table of cases, each a few lines.
func TestHandshakeFailures(t *testing.T) {
	f := newFixture(t)

	expiredEast, err := f.east.NewLeafKeyPair("gateway", time.Hour, f.now.Add(-3*time.Hour))
	require.NoError(t, err)
	expiredWest, err := f.west.NewLeafKeyPair("gateway", time.Hour, f.now.Add(-3*time.Hour))
	require.NoError(t, err)

	selfSigned := manualCert(t, leafTemplate(), "spiffe://"+eastTD+"/gateway", nil, nil)

	// A CA claiming west but holding east's key material: it signs leaves
	// with the west trust domain that chain only to east's CA.
	rogue := &certs.CA{Cert: f.east.Cert, Key: f.east.Key, TrustDomain: westTD}
	forged, err := rogue.NewLeafKeyPair("gateway", time.Hour, f.now)
	require.NoError(t, err)
	forgedWithIntermediate := &tls.Certificate{
		Certificate: [][]byte{forged.Certificate[0], f.east.Cert.Raw},
		PrivateKey:  forged.PrivateKey,
	}

	serverAuthOnly := leafTemplate()
	serverAuthOnly.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	eastServerOnly := manualCert(t, serverAuthOnly, "spiffe://"+eastTD+"/gateway", f.east.Cert, f.east.Key)

	clientWith := func(c *tls.Certificate, mod func(*certs.TLSOptions)) *tls.Config {
		o := f.clientOpts()
		o.Source = certs.NewStaticSource(c)
		if mod != nil {
			mod(&o)
		}
		return certs.ClientConfig(o)
	}
	serverWith := func(c *tls.Certificate, mod func(*certs.TLSOptions)) *tls.Config {
		o := f.serverOpts()
		o.Source = certs.NewStaticSource(c)
		if mod != nil {
			mod(&o)
		}
		return certs.ServerConfig(o)
	}
	unknownAuthority := func(t *testing.T, err error) {
		var ua x509.UnknownAuthorityError
		require.ErrorAs(t, err, &ua)
	}
	expired := func(t *testing.T, err error) {
		var ci x509.CertificateInvalidError
		require.ErrorAs(t, err, &ci)
		require.Equal(t, x509.Expired, ci.Reason)
	}
	is := func(target error) func(*testing.T, error) {
		return func(t *testing.T, err error) { require.ErrorIs(t, err, target) }
	}
	contains := func(s string) func(*testing.T, error) {
		return func(t *testing.T, err error) { require.ErrorContains(t, err, s) }
	}

	tests := []struct {
		name   string
		client *tls.Config
		server *tls.Config
		// The rejecting side's error is checked; the other side just fails.
		checkServer func(*testing.T, error)
		checkClient func(*testing.T, error)
	}{
		{
			name: "no client certificate",
			client: &tls.Config{
				MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, NextProtos: []string{alpn},
			},
			server:      serverWith(f.westGW, nil),
			checkServer: contains("client didn't provide a certificate"),
		},
		{
			name:        "client source without certificate",
			client:      clientWith(nil, nil),
			server:      serverWith(f.westGW, nil),
			checkClient: contains("no certificate set"),
		},
		{
			name:        "server source without certificate",
			client:      clientWith(f.eastGW, nil),
			server:      serverWith(nil, nil),
			checkServer: contains("no certificate set"),
		},
		{
			name:        "expired client leaf",
			client:      clientWith(expiredEast, nil),
			server:      serverWith(f.westGW, nil),
			checkServer: expired,
		},
		{
			name:        "expired server leaf",
			client:      clientWith(f.eastGW, nil),
			server:      serverWith(expiredWest, nil),
			checkClient: expired,
		},
		{
			name: "server leaf not yet valid at client's clock",
			client: clientWith(f.eastGW, func(o *certs.TLSOptions) {
				o.Now = func() time.Time { return f.now.Add(-time.Hour) }
			}),
			server:      serverWith(f.westGW, nil),
			checkClient: func(t *testing.T, err error) { var ci x509.CertificateInvalidError; require.ErrorAs(t, err, &ci) },
		},
		{
			name:        "self-signed client leaf",
			client:      clientWith(selfSigned, nil),
			server:      serverWith(f.westGW, nil),
			checkServer: unknownAuthority,
		},
		{
			name:        "self-signed server leaf",
			client:      clientWith(f.eastGW, func(o *certs.TLSOptions) { o.Authorize = nil }),
			server:      serverWith(selfSigned, nil),
			checkClient: unknownAuthority,
		},
		{
			name:   "client claims west but is signed by east",
			client: clientWith(forged, nil),
			server: serverWith(f.westGW, func(o *certs.TLSOptions) { o.Authorize = nil }),
			checkServer: func(t *testing.T, err error) {
				unknownAuthority(t, err)
				require.ErrorContains(t, err, "verify peer spiffe://west.clusterset.local/gateway")
			},
		},
		{
			name:        "client claims west, signed by east, presenting east CA as intermediate",
			client:      clientWith(forgedWithIntermediate, nil),
			server:      serverWith(f.westGW, func(o *certs.TLSOptions) { o.Authorize = nil }),
			checkServer: unknownAuthority,
		},
		{
			name:        "server claims west but is signed by east",
			client:      clientWith(f.eastGW, nil),
			server:      serverWith(forged, nil),
			checkClient: unknownAuthority,
		},
		{
			name:        "client trust domain not in bundles",
			client:      clientWith(f.northGW, nil),
			server:      serverWith(f.westGW, func(o *certs.TLSOptions) { o.Authorize = nil }),
			checkServer: is(certs.ErrUnknownTrustDomain),
		},
		{
			name:        "server trust domain not in bundles",
			client:      clientWith(f.eastGW, func(o *certs.TLSOptions) { o.Authorize = nil }),
			server:      serverWith(f.northGW, nil),
			checkClient: is(certs.ErrUnknownTrustDomain),
		},
		{
			name:        "client leaf lacks client auth usage",
			client:      clientWith(eastServerOnly, nil),
			server:      serverWith(f.westGW, nil),
			checkServer: func(t *testing.T, err error) { var ci x509.CertificateInvalidError; require.ErrorAs(t, err, &ci) },
		},
		{
			name:        "wrong ALPN",
			client:      clientWith(f.eastGW, func(o *certs.TLSOptions) { o.NextProtos = []string{"h2"} }),
			server:      serverWith(f.westGW, nil),
			checkServer: contains("unsupported application protocols"),
			checkClient: contains("no application protocol"),
		},
		{
			name:        "client offers no ALPN",
			client:      clientWith(f.eastGW, func(o *certs.TLSOptions) { o.NextProtos = nil }),
			server:      serverWith(f.westGW, nil),
			checkServer: contains(`negotiated protocol ""`),
		},
		{
			name:        "server selects no ALPN",
			client:      clientWith(f.eastGW, nil),
			server:      serverWith(f.westGW, func(o *certs.TLSOptions) { o.NextProtos = nil }),
			checkClient: contains(`negotiated protocol ""`),
		},
		{
			name: "TLS 1.2 client",
			client: &tls.Config{
				MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true, NextProtos: []string{alpn},
				Certificates: []tls.Certificate{*f.eastGW},
			},
			server:      serverWith(f.westGW, nil),
			checkServer: contains("unsupported versions"),
		},
		{
			name:   "server authorizer rejects id",
			client: clientWith(f.eastGW, nil),
			server: serverWith(f.westGW, func(o *certs.TLSOptions) {
				o.Authorize = certs.AuthorizeID(certs.ID{TrustDomain: eastTD, Path: "/controller"})
			}),
			checkServer: is(certs.ErrUnauthorized),
		},
		{
			name:        "server member authorizer rejects component",
			client:      clientWith(f.eastCtl, nil),
			server:      serverWith(f.westGW, func(o *certs.TLSOptions) { o.Authorize = certs.AuthorizeMember("gateway") }),
			checkServer: is(certs.ErrUnauthorized),
		},
		{
			name:        "client authorizer rejects trust domain",
			client:      clientWith(f.eastGW, func(o *certs.TLSOptions) { o.Authorize = certs.AuthorizeTrustDomain(eastTD) }),
			server:      serverWith(f.westGW, nil),
			checkClient: is(certs.ErrUnauthorized),
		},
		{
			name: "custom authorizer error",
			client: clientWith(f.eastGW, func(o *certs.TLSOptions) {
				o.Authorize = func(certs.ID) error { return errors.New("nope") }
			}),
			server:      serverWith(f.westGW, nil),
			checkClient: contains("authorize peer spiffe://west.clusterset.local/gateway: nope"),
		},
		{
			name:        "client without bundles",
			client:      clientWith(f.eastGW, func(o *certs.TLSOptions) { o.Bundles = nil }),
			server:      serverWith(f.westGW, nil),
			checkClient: contains("no bundle source"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := handshake(t, tc.client, tc.server)
			require.Error(t, r.clientErr, "client must fail")
			require.Error(t, r.serverErr, "server must fail")
			require.True(t, tc.checkServer != nil || tc.checkClient != nil, "test must check a side")
			if tc.checkServer != nil {
				tc.checkServer(t, r.serverErr)
			}
			if tc.checkClient != nil {
				tc.checkClient(t, r.clientErr)
			}
		})
	}
}

func TestStaticSourceSwap(t *testing.T) {
	f := newFixture(t)
	serverSrc := certs.NewStaticSource(f.westGW)
	clientSrc := certs.NewStaticSource(f.eastGW)
	so := f.serverOpts()
	so.Source = serverSrc
	so.Authorize = nil
	co := f.clientOpts()
	co.Source = clientSrc
	co.Authorize = nil
	serverCfg, clientCfg := certs.ServerConfig(so), certs.ClientConfig(co)

	r := handshake(t, clientCfg, serverCfg)
	require.NoError(t, r.clientErr)
	require.NoError(t, r.serverErr)
	require.True(t, f.westGW.Leaf.Equal(r.client.PeerCertificates[0]))
	require.True(t, f.eastGW.Leaf.Equal(r.server.PeerCertificates[0]))

	newWest := f.leaf(t, f.west, "gateway")
	newEast := f.leaf(t, f.east, "controller")
	serverSrc.Set(newWest)
	clientSrc.Set(newEast)

	r = handshake(t, clientCfg, serverCfg)
	require.NoError(t, r.clientErr)
	require.NoError(t, r.serverErr)
	require.True(t, newWest.Leaf.Equal(r.client.PeerCertificates[0]))
	require.True(t, newEast.Leaf.Equal(r.server.PeerCertificates[0]))
	id, err := certs.PeerID(r.server)
	require.NoError(t, err)
	require.Equal(t, certs.ID{TrustDomain: eastTD, Path: "/controller"}, id)

	got, err := serverSrc.Certificate()
	require.NoError(t, err)
	require.Same(t, newWest, got)
	var nilSrc *certs.StaticSource
	_, err = nilSrc.Certificate()
	require.Error(t, err)
}

func TestBundleRemovalRejectsNewHandshakes(t *testing.T) {
	f := newFixture(t)
	// A session cache on the client must not let a resumed session bypass
	// verification after the bundle changes.
	co := f.clientOpts()
	clientCfg := certs.ClientConfig(co)
	clientCfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	serverCfg := certs.ServerConfig(f.serverOpts())

	r := handshake(t, clientCfg, serverCfg)
	require.NoError(t, r.clientErr)
	require.NoError(t, r.serverErr)

	f.bundles.Delete(eastTD)
	r = handshake(t, clientCfg, serverCfg)
	require.False(t, r.server.DidResume)
	require.ErrorIs(t, r.serverErr, certs.ErrUnknownTrustDomain)
	require.Error(t, r.clientErr)

	f.bundles.Set(eastTD, []*x509.Certificate{f.east.Cert})
	r = handshake(t, clientCfg, serverCfg)
	require.NoError(t, r.clientErr)
	require.NoError(t, r.serverErr)
}

func TestConfigsAreTLS13Only(t *testing.T) {
	f := newFixture(t)
	for _, cfg := range []*tls.Config{certs.ServerConfig(f.serverOpts()), certs.ClientConfig(f.clientOpts())} {
		require.Equal(t, uint16(tls.VersionTLS13), cfg.MinVersion)
		require.Equal(t, uint16(tls.VersionTLS13), cfg.MaxVersion)
		require.NotNil(t, cfg.VerifyPeerCertificate)
		require.NotNil(t, cfg.VerifyConnection)
		require.Equal(t, []string{alpn}, cfg.NextProtos)
	}
	require.Equal(t, tls.RequireAnyClientCert, certs.ServerConfig(f.serverOpts()).ClientAuth)

	// Empty options produce configs that fail closed rather than panic.
	r := handshake(t, certs.ClientConfig(certs.TLSOptions{}), certs.ServerConfig(certs.TLSOptions{}))
	require.Error(t, r.clientErr)
	require.Error(t, r.serverErr)
}
