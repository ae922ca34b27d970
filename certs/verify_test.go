package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/causeway-mesh/causeway/certs"
)

// Over 80 lines: a table of cases, each a few lines.
func TestVerifyChain(t *testing.T) {
	f := newFixture(t)

	// A self-signed CA carrying a workload SPIFFE ID, placed in east's bundle:
	// presented as a leaf, it would verify against itself if CA leaves were
	// not refused.
	caLeaf := manualCert(t, &x509.Certificate{
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, "spiffe://"+eastTD+"/gateway", nil, nil)
	withCALeaf := certs.NewBundleSet()
	withCALeaf.Set(eastTD, []*x509.Certificate{f.east.Cert, caLeaf.Leaf})

	emptyBundle := certs.NewBundleSet()
	emptyBundle.Set(eastTD, nil)

	rogue := &certs.CA{Cert: f.east.Cert, Key: f.east.Key, TrustDomain: westTD}
	forged, err := rogue.NewLeafKeyPair("gateway", time.Hour, f.now)
	require.NoError(t, err)

	tests := []struct {
		name    string
		raw     [][]byte
		bundles certs.BundleSource
		now     time.Time
		wantID  certs.ID
		check   func(*testing.T, error)
	}{
		{name: "valid east", raw: f.eastGW.Certificate, bundles: f.bundles, now: f.now, wantID: f.eastID},
		{name: "valid west", raw: f.westGW.Certificate, bundles: f.bundles, now: f.now, wantID: f.westID},
		{
			name: "no certificates", bundles: f.bundles, now: f.now,
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, certs.ErrNoPeerCertificate) },
		},
		{
			name: "garbage", raw: [][]byte{{0x30, 0x01}}, bundles: f.bundles, now: f.now,
			check: func(t *testing.T, err error) { require.ErrorContains(t, err, "parse certificate 0") },
		},
		{
			name: "garbage intermediate", raw: [][]byte{f.eastGW.Certificate[0], {1}}, bundles: f.bundles, now: f.now,
			check: func(t *testing.T, err error) { require.ErrorContains(t, err, "parse certificate 1") },
		},
		{
			name: "too long chain", raw: make([][]byte, 9), bundles: f.bundles, now: f.now,
			check: func(t *testing.T, err error) { require.ErrorContains(t, err, "exceeds") },
		},
		{
			name: "nil bundles", raw: f.eastGW.Certificate, now: f.now,
			check: func(t *testing.T, err error) { require.ErrorContains(t, err, "no bundle source") },
		},
		{
			name: "CA certificate without path", raw: [][]byte{f.east.Cert.Raw}, bundles: f.bundles, now: f.now,
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, certs.ErrInvalidID) },
		},
		{
			name: "CA certificate as leaf", raw: caLeaf.Certificate, bundles: withCALeaf, now: f.now,
			check: func(t *testing.T, err error) { require.ErrorContains(t, err, "leaf certificate is a CA") },
		},
		{
			name: "unknown trust domain", raw: f.northGW.Certificate, bundles: f.bundles, now: f.now,
			check: func(t *testing.T, err error) {
				require.ErrorIs(t, err, certs.ErrUnknownTrustDomain)
				require.ErrorContains(t, err, "verify peer spiffe://north.clusterset.local/gateway")
			},
		},
		{
			name: "empty bundle", raw: f.eastGW.Certificate, bundles: emptyBundle, now: f.now,
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, certs.ErrUnknownTrustDomain) },
		},
		{
			name: "cross-domain forgery", raw: forged.Certificate, bundles: f.bundles, now: f.now,
			check: func(t *testing.T, err error) {
				var ua x509.UnknownAuthorityError
				require.ErrorAs(t, err, &ua)
			},
		},
		{
			name: "cross-domain forgery with east CA as intermediate", raw: [][]byte{forged.Certificate[0], f.east.Cert.Raw},
			bundles: f.bundles, now: f.now,
			check: func(t *testing.T, err error) {
				var ua x509.UnknownAuthorityError
				require.ErrorAs(t, err, &ua)
			},
		},
		{
			name: "expired", raw: f.eastGW.Certificate, bundles: f.bundles, now: f.now.Add(2 * time.Hour),
			check: func(t *testing.T, err error) {
				var ci x509.CertificateInvalidError
				require.ErrorAs(t, err, &ci)
				require.Equal(t, x509.Expired, ci.Reason)
			},
		},
		{
			name: "not yet valid", raw: f.eastGW.Certificate, bundles: f.bundles, now: f.now.Add(-time.Hour),
			check: func(t *testing.T, err error) {
				var ci x509.CertificateInvalidError
				require.ErrorAs(t, err, &ci)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, leaf, err := certs.VerifyChain(tc.raw, tc.bundles, tc.now)
			if tc.check != nil {
				require.Error(t, err)
				tc.check(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantID, id)
			require.Equal(t, tc.raw[0], leaf.Raw)
		})
	}
}

func TestAuthorizers(t *testing.T) {
	east := certs.ID{TrustDomain: eastTD, Path: "/gateway"}
	eastCtl := certs.ID{TrustDomain: eastTD, Path: "/controller"}
	west := certs.ID{TrustDomain: westTD, Path: "/gateway"}
	tests := []struct {
		name  string
		auth  certs.Authorizer
		id    certs.ID
		allow bool
	}{
		{"trust domain match", certs.AuthorizeTrustDomain(eastTD), eastCtl, true},
		{"trust domain mismatch", certs.AuthorizeTrustDomain(eastTD), west, false},
		{"id match", certs.AuthorizeID(east), east, true},
		{"id other path", certs.AuthorizeID(east), eastCtl, false},
		{"id other trust domain", certs.AuthorizeID(east), west, false},
		{"member match east", certs.AuthorizeMember("gateway"), east, true},
		{"member match west", certs.AuthorizeMember("gateway"), west, true},
		{"member mismatch", certs.AuthorizeMember("gateway"), eastCtl, false},
		{"member prefix is not enough", certs.AuthorizeMember("gate"), east, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.auth(tc.id)
			if tc.allow {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, certs.ErrUnauthorized)
			}
		})
	}
}

func TestPeerID(t *testing.T) {
	f := newFixture(t)
	_, err := certs.PeerID(tls.ConnectionState{})
	require.ErrorIs(t, err, certs.ErrNoPeerCertificate)
	id, err := certs.PeerID(tls.ConnectionState{PeerCertificates: []*x509.Certificate{f.westGW.Leaf}})
	require.NoError(t, err)
	require.Equal(t, f.westID, id)
	_, err = certs.PeerID(tls.ConnectionState{PeerCertificates: []*x509.Certificate{f.east.Cert}})
	require.ErrorIs(t, err, certs.ErrInvalidID)
}
