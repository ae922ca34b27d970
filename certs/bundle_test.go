package certs_test

import (
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/causeway-mesh/causeway/certs"
)

func TestBundleSet(t *testing.T) {
	now := time.Now()
	east, err := certs.NewCA("east.clusterset.local", time.Hour, now)
	require.NoError(t, err)
	west, err := certs.NewCA("west.clusterset.local", time.Hour, now)
	require.NoError(t, err)

	s := certs.NewBundleSet()
	_, ok := s.Bundle("east.clusterset.local")
	require.False(t, ok)
	require.Empty(t, s.TrustDomains())

	in := []*x509.Certificate{east.Cert, nil}
	s.Set("west.clusterset.local", []*x509.Certificate{west.Cert})
	s.Set("east.clusterset.local", in)
	in[0] = west.Cert // mutating the caller's slice does not affect the set

	got, ok := s.Bundle("east.clusterset.local")
	require.True(t, ok)
	require.Equal(t, []*x509.Certificate{east.Cert}, got)
	got[0] = nil // mutating the returned slice does not affect the set
	got, ok = s.Bundle("east.clusterset.local")
	require.True(t, ok)
	require.Equal(t, []*x509.Certificate{east.Cert}, got)

	require.Equal(t, []string{"east.clusterset.local", "west.clusterset.local"}, s.TrustDomains())

	s.Delete("east.clusterset.local")
	_, ok = s.Bundle("east.clusterset.local")
	require.False(t, ok)
	require.Equal(t, []string{"west.clusterset.local"}, s.TrustDomains())
	s.Delete("never-there")

	var nilSet *certs.BundleSet
	_, ok = nilSet.Bundle("east.clusterset.local")
	require.False(t, ok)
	require.Empty(t, nilSet.TrustDomains())
}

func TestBundleSetConcurrent(t *testing.T) {
	ca, err := certs.NewCA("east.clusterset.local", time.Hour, time.Now())
	require.NoError(t, err)
	s := certs.NewBundleSet()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if i%2 == 0 {
					s.Set("east.clusterset.local", []*x509.Certificate{ca.Cert})
					s.Delete("east.clusterset.local")
				} else {
					s.Bundle("east.clusterset.local")
					s.TrustDomains()
				}
			}
		}()
	}
	wg.Wait()
}

func TestParseAuthorities(t *testing.T) {
	now := time.Now()
	east, err := certs.NewCA("east.clusterset.local", time.Hour, now)
	require.NoError(t, err)
	west, err := certs.NewCA("west.clusterset.local", time.Hour, now)
	require.NoError(t, err)
	leaf, err := east.NewLeafKeyPair("gateway", time.Hour, now)
	require.NoError(t, err)

	der := certs.AuthoritiesDER([]*x509.Certificate{east.Cert, nil, west.Cert})
	require.Len(t, der, 2)
	parsed, err := certs.ParseAuthorities(der)
	require.NoError(t, err)
	require.Len(t, parsed, 2)
	require.True(t, parsed[0].Equal(east.Cert))
	require.True(t, parsed[1].Equal(west.Cert))

	// The DER is a copy.
	der[0][0] ^= 0xff
	require.NotEqual(t, der[0][0], east.Cert.Raw[0])

	empty, err := certs.ParseAuthorities(nil)
	require.NoError(t, err)
	require.Empty(t, empty)

	tests := []struct {
		name    string
		der     [][]byte
		wantErr string
	}{
		{"garbage", [][]byte{east.Cert.Raw, {1, 2, 3}}, "parse authority 1"},
		{"nil entry", [][]byte{nil}, "parse authority 0"},
		{"leaf", [][]byte{east.Cert.Raw, west.Cert.Raw, leaf.Leaf.Raw}, "parse authority 2: certificate is not a CA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := certs.ParseAuthorities(tc.der)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
