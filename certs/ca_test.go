package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/causeway-mesh/causeway/certs"
)

func TestNewCA(t *testing.T) {
	now := time.Now()
	ca, err := certs.NewCA("east.clusterset.local", 24*time.Hour, now)
	require.NoError(t, err)
	c := ca.Cert
	require.Equal(t, "east.clusterset.local", ca.TrustDomain)
	require.True(t, c.BasicConstraintsValid)
	require.True(t, c.IsCA)
	require.Equal(t, 0, c.MaxPathLen)
	require.True(t, c.MaxPathLenZero)
	require.Equal(t, x509.KeyUsageCertSign|x509.KeyUsageCRLSign, c.KeyUsage)
	require.Len(t, c.URIs, 1)
	require.Equal(t, "spiffe://east.clusterset.local", c.URIs[0].String())
	require.WithinDuration(t, now.Add(-time.Minute), c.NotBefore, time.Second)
	require.WithinDuration(t, now.Add(24*time.Hour), c.NotAfter, time.Second)
	require.Equal(t, elliptic.P256(), ca.Key.Curve)
	require.Positive(t, c.SerialNumber.Sign())
	require.LessOrEqual(t, c.SerialNumber.BitLen(), 128)
	require.NoError(t, c.CheckSignatureFrom(c))

	ca2, err := certs.NewCA("east.clusterset.local", 24*time.Hour, now)
	require.NoError(t, err)
	require.NotEqual(t, c.SerialNumber, ca2.Cert.SerialNumber)

	for _, tc := range []struct {
		name     string
		td       string
		lifetime time.Duration
	}{
		{"empty trust domain", "", time.Hour},
		{"bad trust domain", "East/x", time.Hour},
		{"zero lifetime", "east", 0},
		{"negative lifetime", "east", -time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := certs.NewCA(tc.td, tc.lifetime, now)
			require.Error(t, err)
		})
	}
}

func TestIssueLeaf(t *testing.T) {
	now := time.Now()
	ca, err := certs.NewCA("east.clusterset.local", 2*time.Hour, now)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)

	leaf, err := ca.IssueLeaf("gateway", key.Public(), time.Hour, now)
	require.NoError(t, err)
	require.False(t, leaf.IsCA)
	require.Equal(t, x509.KeyUsageDigitalSignature, leaf.KeyUsage)
	require.ElementsMatch(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage)
	require.Len(t, leaf.URIs, 1)
	require.Equal(t, "spiffe://east.clusterset.local/gateway", leaf.URIs[0].String())
	require.Empty(t, leaf.DNSNames)
	require.Empty(t, leaf.IPAddresses)
	require.NoError(t, leaf.CheckSignatureFrom(ca.Cert))
	require.WithinDuration(t, now.Add(time.Hour), leaf.NotAfter, time.Second)

	// Lifetime beyond the CA's is capped at the CA's NotAfter.
	long, err := ca.IssueLeaf("gateway", key.Public(), 100*time.Hour, now)
	require.NoError(t, err)
	require.Equal(t, ca.Cert.NotAfter, long.NotAfter)

	_, err = ca.IssueLeaf("gateway", key.Public(), time.Hour, now.Add(3*time.Hour))
	require.ErrorContains(t, err, "ca expired")
	_, err = ca.IssueLeaf("bad//component", key.Public(), time.Hour, now)
	require.ErrorIs(t, err, certs.ErrInvalidID)
	_, err = ca.IssueLeaf("gateway", nil, time.Hour, now)
	require.Error(t, err)
	_, err = ca.IssueLeaf("gateway", key.Public(), 0, now)
	require.Error(t, err)

	var nilCA *certs.CA
	_, err = nilCA.IssueLeaf("gateway", key.Public(), time.Hour, now)
	require.Error(t, err)
	_, err = (&certs.CA{TrustDomain: "east"}).IssueLeaf("gateway", key.Public(), time.Hour, now)
	require.Error(t, err)
	_, err = nilCA.NewLeafKeyPair("gateway", time.Hour, now)
	require.Error(t, err)
	_, _, err = nilCA.PEM()
	require.Error(t, err)
}

func TestNewLeafKeyPair(t *testing.T) {
	now := time.Now()
	ca, err := certs.NewCA("west.clusterset.local", time.Hour, now)
	require.NoError(t, err)
	kp, err := ca.NewLeafKeyPair("controller", time.Hour, now)
	require.NoError(t, err)
	require.NotNil(t, kp.Leaf)
	require.Equal(t, [][]byte{kp.Leaf.Raw}, kp.Certificate)
	key, ok := kp.PrivateKey.(*ecdsa.PrivateKey)
	require.True(t, ok)
	require.Equal(t, elliptic.P256(), key.Curve)
	require.True(t, key.PublicKey.Equal(kp.Leaf.PublicKey))
	id, err := certs.IDFromCertificate(kp.Leaf)
	require.NoError(t, err)
	require.Equal(t, certs.ID{TrustDomain: "west.clusterset.local", Path: "/controller"}, id)
}

func TestLoadCAPEMRoundTrip(t *testing.T) {
	ca, err := certs.NewCA("east.clusterset.local", time.Hour, time.Now())
	require.NoError(t, err)
	certPEM, keyPEM, err := ca.PEM()
	require.NoError(t, err)

	block, _ := pem.Decode(keyPEM)
	require.NotNil(t, block)
	require.Equal(t, "PRIVATE KEY", block.Type)
	block, _ = pem.Decode(certPEM)
	require.NotNil(t, block)
	require.Equal(t, "CERTIFICATE", block.Type)

	loaded, err := certs.LoadCA(certPEM, keyPEM)
	require.NoError(t, err)
	require.Equal(t, ca.TrustDomain, loaded.TrustDomain)
	require.True(t, ca.Cert.Equal(loaded.Cert))
	require.True(t, ca.Key.Equal(loaded.Key))

	// The loaded CA issues leaves that chain to the original certificate.
	kp, err := loaded.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	require.NoError(t, kp.Leaf.CheckSignatureFrom(ca.Cert))

	// SEC 1 "EC PRIVATE KEY" is accepted too.
	ecDER, err := x509.MarshalECPrivateKey(ca.Key)
	require.NoError(t, err)
	_, err = certs.LoadCA(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	require.NoError(t, err)
}

func TestLoadCAErrors(t *testing.T) {
	now := time.Now()
	ca, err := certs.NewCA("east.clusterset.local", time.Hour, now)
	require.NoError(t, err)
	certPEM, keyPEM, err := ca.PEM()
	require.NoError(t, err)
	other, err := certs.NewCA("east.clusterset.local", time.Hour, now)
	require.NoError(t, err)
	_, otherKeyPEM, err := other.PEM()
	require.NoError(t, err)
	kp, err := ca.NewLeafKeyPair("gateway", time.Hour, now)
	require.NoError(t, err)
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.Leaf.Raw})
	leafKeyDER, err := x509.MarshalPKCS8PrivateKey(kp.PrivateKey)
	require.NoError(t, err)
	leafKeyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: leafKeyDER})

	tests := []struct {
		name          string
		certPEM, key  []byte
		wantErrSubstr string
	}{
		{"empty", nil, nil, "no PEM CERTIFICATE"},
		{"garbage cert", []byte("garbage"), keyPEM, "no PEM CERTIFICATE"},
		{"bad cert DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), keyPEM, "parse certificate"},
		{"key block as cert", keyPEM, keyPEM, "no PEM CERTIFICATE"},
		{"leaf not CA", leafPEM, leafKeyPEM, "not a CA"},
		{"no key", certPEM, nil, "no PEM private key"},
		{"wrong key block type", certPEM, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}}), "unsupported"},
		{"bad key DER", certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), "parse private key"},
		{"mismatched key", certPEM, otherKeyPEM, "does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := certs.LoadCA(tc.certPEM, tc.key)
			require.ErrorContains(t, err, tc.wantErrSubstr)
		})
	}
}

func TestWriteFileExclusive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ca.key")

	require.NoError(t, certs.WriteFileExclusive(path, []byte("one"), 0o600, false))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	err = certs.WriteFileExclusive(path, []byte("two"), 0o600, false)
	require.ErrorIs(t, err, os.ErrExist)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "one", string(got))

	require.NoError(t, certs.WriteFileExclusive(path, []byte("three"), 0o600, true))
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "three", string(got))
	st, err = os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// Forcing a new file creates it; no temporary files are left behind.
	fresh := filepath.Join(dir, "fresh.pem")
	require.NoError(t, certs.WriteFileExclusive(fresh, []byte("x"), 0o644, true))
	st, err = os.Stat(fresh)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2)

	// A missing directory is an error, not a panic.
	require.Error(t, certs.WriteFileExclusive(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600, false))
	require.Error(t, certs.WriteFileExclusive(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600, true))
}
