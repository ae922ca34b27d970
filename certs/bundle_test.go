package certs_test

import (
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
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

func TestCheckPublishedBundle(t *testing.T) {
	now := time.Now()
	east, err := certs.NewCA("east.clusterset.local", time.Hour, now)
	require.NoError(t, err)
	next, err := certs.NewCA("east.clusterset.local", time.Hour, now)
	require.NoError(t, err)
	westByEast, err := certs.NewCA("west.clusterset.local", time.Hour, now) // minted by a compromised east
	require.NoError(t, err)
	leaf, err := east.NewLeafKeyPair("gateway", time.Hour, now)
	require.NoError(t, err)
	bundle := func(cluster, td string, cas ...*x509.Certificate) *causewayv1.TrustBundle {
		return &causewayv1.TrustBundle{Cluster: cluster, TrustDomain: td, X509Authorities: certs.AuthoritiesDER(cas)}
	}

	td, cas, err := certs.CheckPublishedBundle("east", bundle("east", "east.clusterset.local", east.Cert, next.Cert))
	require.NoError(t, err)
	require.Equal(t, "east.clusterset.local", td)
	require.Len(t, cas, 2)

	tests := []struct {
		name string
		key  string
		b    *causewayv1.TrustBundle
		want error
	}{
		{"record names another cluster", "east", bundle("west", "west.clusterset.local", westByEast.Cert), certs.ErrBundleMismatch},
		{"another cluster's trust domain", "east", bundle("east", "west.clusterset.local", westByEast.Cert), certs.ErrBundleMismatch},
		{"lookalike trust domain", "east", bundle("east", "eastern.clusterset.local", east.Cert), certs.ErrBundleMismatch},
		{"CA of another trust domain", "east", bundle("east", "east.clusterset.local", east.Cert, westByEast.Cert), certs.ErrBundleMismatch},
		{"bad trust domain", "east", bundle("east", "east.Clusterset/local", east.Cert), certs.ErrInvalidID},
		{"leaf as authority", "east", bundle("east", "east.clusterset.local", leaf.Leaf), nil},
		{"no authority", "east", bundle("east", "east.clusterset.local"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := certs.CheckPublishedBundle(tc.key, tc.b)
			require.Error(t, err)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			}
		})
	}
	require.Equal(t, "east", certs.ClusterOfTrustDomain("east.clusterset.local"))
	require.Equal(t, "east", certs.ClusterOfTrustDomain("east"))
}
