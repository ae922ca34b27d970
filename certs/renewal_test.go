package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRenewalProof: a proof verifies for its CSR only, against the CA that
// issued the leaf only, and an expired leaf gives no proof.
func TestRenewalProof(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("east.clusterset.local", time.Hour, now)
	require.NoError(t, err)
	leaf, err := ca.NewLeafKeyPair("gateway", time.Hour, now)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	csr, err := NewCSR(key, ID{TrustDomain: "east.clusterset.local", Path: "/gateway"})
	require.NoError(t, err)
	bundles := NewBundleSet()
	bundles.Set("east.clusterset.local", []*x509.Certificate{ca.Cert})

	der, proof, ok := RenewalProof(leaf, csr, now)
	require.True(t, ok)
	id, err := VerifyRenewalProof(der, proof, csr, bundles, now)
	require.NoError(t, err)
	require.Equal(t, "spiffe://east.clusterset.local/gateway", id.String())

	other := append([]byte(nil), csr...)
	other[len(other)-1] ^= 1
	_, err = VerifyRenewalProof(der, proof, other, bundles, now)
	require.ErrorIs(t, err, ErrRenewalProof, "the proof covers its CSR only")

	ca2, err := NewCA("east.clusterset.local", time.Hour, now)
	require.NoError(t, err)
	foreign := NewBundleSet()
	foreign.Set("east.clusterset.local", []*x509.Certificate{ca2.Cert})
	_, err = VerifyRenewalProof(der, proof, csr, foreign, now)
	require.ErrorIs(t, err, ErrRenewalProof, "a leaf of another CA proves nothing")

	_, _, ok = RenewalProof(leaf, csr, now.Add(2*time.Hour))
	require.False(t, ok, "an expired leaf gives no proof")
	_, _, ok = RenewalProof(nil, csr, now)
	require.False(t, ok)
}
