package certs_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/causeway-mesh/causeway/certs"
)

// csrSpec describes a certificate request to build for a test.
type csrSpec struct {
	key    crypto.Signer // nil: a fresh P-256 key
	uris   []string
	dns    []string
	ips    []net.IP
	emails []string
	extra  []pkix.Extension
}

func p256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func buildCSR(t testing.TB, s csrSpec) []byte {
	t.Helper()
	key := s.key
	if key == nil {
		key = p256(t)
	}
	tmpl := &x509.CertificateRequest{DNSNames: s.dns, IPAddresses: s.ips, EmailAddresses: s.emails, ExtraExtensions: s.extra}
	for _, u := range s.uris {
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	require.NoError(t, err)
	return der
}

// sanWithOtherName is a subjectAltName extension holding a SPIFFE URI and an
// otherName, which the standard library's parser silently drops.
func sanWithOtherName(t testing.TB, uri string) pkix.Extension {
	t.Helper()
	other, err := asn1.Marshal(struct {
		TypeID asn1.ObjectIdentifier
		Value  asn1.RawValue `asn1:"explicit,tag:0"`
	}{asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}, asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte("admin@corp")}})
	require.NoError(t, err)
	other[0] = 0xa0 // SEQUENCE -> [0] constructed: otherName
	val, err := asn1.Marshal([]asn1.RawValue{
		{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(uri)},
		{FullBytes: other},
	})
	require.NoError(t, err)
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: val}
}

func TestCheckCSR(t *testing.T) {
	gw := "spiffe://" + eastTD + "/gateway"
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	valid := buildCSR(t, csrSpec{uris: []string{gw}})
	badSig := slices.Clone(valid)
	badSig[len(badSig)-1] ^= 0x01
	basicConstraints, err := asn1.Marshal(struct{ IsCA bool }{true})
	require.NoError(t, err)

	tests := []struct {
		name string
		der  []byte
		want error // nil: accepted
	}{
		{"valid", valid, nil},
		{"empty", nil, certs.ErrCSRMalformed},
		{"garbage", []byte("-----BEGIN CERTIFICATE REQUEST-----"), certs.ErrCSRMalformed},
		{"trailing data", append(slices.Clone(valid), 0), certs.ErrCSRMalformed},
		{"oversize", make([]byte, certs.MaxCSRSize+1), certs.ErrCSRTooLarge},
		{"bad signature", badSig, certs.ErrCSRSignature},
		{"RSA key", buildCSR(t, csrSpec{key: rsaKey, uris: []string{gw}}), certs.ErrCSRKey},
		{"P-384 key", buildCSR(t, csrSpec{key: p384, uris: []string{gw}}), certs.ErrCSRKey},
		{"Ed25519 key", buildCSR(t, csrSpec{key: edKey, uris: []string{gw}}), certs.ErrCSRKey},
		{"no SAN", buildCSR(t, csrSpec{}), certs.ErrCSRNames},
		{"extra DNS SAN", buildCSR(t, csrSpec{uris: []string{gw}, dns: []string{"gateway.example"}}), certs.ErrCSRNames},
		{"extra IP SAN", buildCSR(t, csrSpec{uris: []string{gw}, ips: []net.IP{net.IPv4(10, 0, 0, 1)}}), certs.ErrCSRNames},
		{"extra e-mail SAN", buildCSR(t, csrSpec{uris: []string{gw}, emails: []string{"a@b.c"}}), certs.ErrCSRNames},
		{"second URI", buildCSR(t, csrSpec{uris: []string{gw, "spiffe://" + eastTD + "/dnsshim"}}), certs.ErrCSRNames},
		{"non-SPIFFE URI", buildCSR(t, csrSpec{uris: []string{"https://east.example/gateway"}}), certs.ErrCSRNames},
		{"SPIFFE ID without path", buildCSR(t, csrSpec{uris: []string{"spiffe://" + eastTD}}), certs.ErrCSRNames},
		{"otherName SAN", buildCSR(t, csrSpec{extra: []pkix.Extension{sanWithOtherName(t, gw)}}), certs.ErrCSRNames},
		{"requests basicConstraints", buildCSR(t, csrSpec{uris: []string{gw},
			extra: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: basicConstraints}}}), certs.ErrCSRExtension},
		{"another cluster's identity", buildCSR(t, csrSpec{uris: []string{"spiffe://" + westTD + "/gateway"}}), certs.ErrCSRForeignTrustDomain},
		{"lookalike trust domain", buildCSR(t, csrSpec{uris: []string{"spiffe://east.clusterset.local.evil/gateway"}}), certs.ErrCSRForeignTrustDomain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			csr, id, err := certs.CheckCSR(tc.der, eastTD)
			if tc.want == nil {
				require.NoError(t, err)
				require.NotNil(t, csr)
				require.Equal(t, certs.ID{TrustDomain: eastTD, Path: "/gateway"}, id)
				return
			}
			require.ErrorIs(t, err, tc.want)
			// Exactly one of the two categories.
			require.NotEqual(t, errors.Is(err, certs.ErrCSRInvalid), errors.Is(err, certs.ErrCSRForbidden), "err: %v", err)
			require.Nil(t, csr)
		})
	}
}

func TestIssueFromCSR(t *testing.T) {
	now := time.Now()
	ca, err := certs.NewCA(eastTD, 24*time.Hour, now)
	require.NoError(t, err)
	key := p256(t)
	id := certs.ID{TrustDomain: eastTD, Path: "/gateway"}
	der, err := certs.NewCSR(key, id)
	require.NoError(t, err)

	leaf, err := certs.IssueFromCSR(ca, der, time.Hour, now, certs.AuthorizeComponents("gateway", "dnsshim"))
	require.NoError(t, err)
	got, err := certs.IDFromCertificate(leaf)
	require.NoError(t, err)
	require.Equal(t, id, got)
	require.True(t, key.PublicKey.Equal(leaf.PublicKey))
	require.NoError(t, leaf.CheckSignatureFrom(ca.Cert))
	require.WithinDuration(t, now.Add(time.Hour), leaf.NotAfter, time.Second)
	require.Empty(t, leaf.Subject.CommonName)

	_, err = certs.IssueFromCSR(ca, der, time.Hour, now, certs.AuthorizeComponents("dnsshim"))
	require.ErrorIs(t, err, certs.ErrCSRComponent)
	require.ErrorIs(t, err, certs.ErrCSRForbidden)

	deep, err := certs.NewCSR(key, certs.ID{TrustDomain: eastTD, Path: "/ns/demo/sa/web"})
	require.NoError(t, err)
	_, err = certs.IssueFromCSR(ca, deep, time.Hour, now, nil)
	require.ErrorIs(t, err, certs.ErrCSRComponent)

	west, err := certs.NewCSR(key, certs.ID{TrustDomain: westTD, Path: "/gateway"})
	require.NoError(t, err)
	_, err = certs.IssueFromCSR(ca, west, time.Hour, now, nil)
	require.ErrorIs(t, err, certs.ErrCSRForeignTrustDomain)

	_, err = certs.NewCSR(nil, id)
	require.Error(t, err)
	_, err = certs.NewCSR(key, certs.ID{TrustDomain: eastTD})
	require.ErrorIs(t, err, certs.ErrInvalidID)
}

func TestIDComponent(t *testing.T) {
	for path, want := range map[string]string{"/gateway": "gateway", "/a/b": "", "/": "", "": ""} {
		c, ok := certs.ID{TrustDomain: eastTD, Path: path}.Component()
		require.Equal(t, want, c, path)
		require.Equal(t, want != "", ok, path)
	}
}
