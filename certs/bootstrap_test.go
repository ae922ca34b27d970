package certs_test

import (
	"crypto/tls"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/causeway-mesh/causeway/certs"
)

func TestBootstrapServerConfig(t *testing.T) {
	f := newFixture(t)
	server := func() *tls.Config {
		return certs.BootstrapServerConfig(certs.TLSOptions{Source: certs.NewStaticSource(f.eastCtl), NextProtos: []string{"h2"}})
	}
	fedID := certs.ID{TrustDomain: eastTD, Path: "/controller"}
	client := func(mod func(*certs.TLSOptions)) *tls.Config {
		o := certs.TLSOptions{Bundles: f.bundles, Authorize: certs.AuthorizeID(fedID), NextProtos: []string{"h2"}}
		if mod != nil {
			mod(&o)
		}
		return certs.ClientConfig(o)
	}

	// A caller without a certificate completes the handshake and has
	// verified the server.
	r := handshake(t, client(nil), server())
	require.NoError(t, r.clientErr)
	require.NoError(t, r.serverErr)
	require.Empty(t, r.server.PeerCertificates)
	id, err := certs.PeerID(r.client)
	require.NoError(t, err)
	require.Equal(t, fedID, id)

	// A caller with a certificate is not asked for it.
	r = handshake(t, client(func(o *certs.TLSOptions) { o.Source = certs.NewStaticSource(f.eastGW) }), server())
	require.NoError(t, r.clientErr)
	require.Empty(t, r.server.PeerCertificates)

	tests := []struct {
		name        string
		client      *tls.Config
		checkServer func(*testing.T, error)
		checkClient func(*testing.T, error)
	}{
		{
			name:        "server is not the expected identity",
			client:      client(func(o *certs.TLSOptions) { o.Authorize = certs.AuthorizeID(f.eastID) }),
			checkClient: func(t *testing.T, err error) { require.ErrorIs(t, err, certs.ErrUnauthorized) },
		},
		{
			name:        "server of an unknown trust domain",
			client:      client(func(o *certs.TLSOptions) { o.Bundles = certs.NewBundleSet() }),
			checkClient: func(t *testing.T, err error) { require.ErrorIs(t, err, certs.ErrUnknownTrustDomain) },
		},
		{
			name:        "wrong ALPN",
			client:      client(func(o *certs.TLSOptions) { o.NextProtos = []string{"causeway/1"} }),
			checkServer: func(t *testing.T, err error) { require.ErrorContains(t, err, "unsupported application protocols") },
		},
		{
			name:        "no ALPN",
			client:      client(func(o *certs.TLSOptions) { o.NextProtos = nil }),
			checkServer: func(t *testing.T, err error) { require.ErrorContains(t, err, `negotiated protocol ""`) },
		},
		{
			name:        "TLS 1.2",
			client:      &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true, NextProtos: []string{"h2"}},
			checkServer: func(t *testing.T, err error) { require.ErrorContains(t, err, "unsupported versions") },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := handshake(t, tc.client, server())
			require.Error(t, r.clientErr)
			require.Error(t, r.serverErr)
			if tc.checkServer != nil {
				tc.checkServer(t, r.serverErr)
			}
			if tc.checkClient != nil {
				tc.checkClient(t, r.clientErr)
			}
		})
	}
}
