package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/stretchr/testify/require"
)

// TestCheckPeer: a peer chain is fine while it verifies, expiring when
// only the expiry of a certificate in it stops it verifying, and
// untrusted when its CA is no longer in the bundles.
func TestCheckPeer(t *testing.T) {
	now := time.Now()
	ca, err := certs.NewCA(certs.TrustDomainFor("west", domain), 24*time.Hour, now)
	require.NoError(t, err)
	other, err := certs.NewCA(ca.TrustDomain, 24*time.Hour, now)
	require.NoError(t, err)
	leaf, err := ca.NewLeafKeyPair("gateway", time.Hour, now)
	require.NoError(t, err)
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.Leaf}}

	for _, tc := range []struct {
		name    string
		trusted *certs.CA
		at      time.Time
		want    string
	}{
		{"valid", ca, now, ""},
		{"leaf expires before at", ca, now.Add(2 * time.Hour), reasonPeerExpiring},
		{"CA dropped", other, now, reasonPeerUntrusted},
		{"CA dropped and expired", other, now.Add(2 * time.Hour), reasonPeerUntrusted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gateway{bundles: certs.NewBundleSet()}
			g.bundles.Set(ca.TrustDomain, []*x509.Certificate{tc.trusted.Cert})
			reason, err := g.checkPeer(cs, tc.at)
			require.Equal(t, tc.want, reason)
			if tc.want == "" {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}
