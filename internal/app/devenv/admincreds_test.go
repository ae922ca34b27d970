package devenv

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/stretchr/testify/require"
)

func TestWriteAdminCreds(t *testing.T) {
	ca, err := certs.NewCA("east.clusterset.local", 24*time.Hour, time.Now())
	require.NoError(t, err)
	dir := t.TempDir()
	c := &cluster{spec: ClusterSpec{Name: "east"}, td: ca.TrustDomain, ca: ca, dir: filepath.Join(dir, "clusters", "east")}
	creds, err := c.writeAdminCreds(time.Hour)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "clusters", "east", "admin.key"), creds.Key)

	st, err := os.Stat(creds.Key)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the admin key must be private")

	pair, err := tls.LoadX509KeyPair(creds.Cert, creds.Key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	require.NoError(t, err)
	id, err := certs.IDFromCertificate(leaf)
	require.NoError(t, err)
	require.Equal(t, "spiffe://east.clusterset.local/admin", id.String())
	require.Greater(t, time.Until(leaf.NotAfter), 23*time.Hour, "a 1h leaf lifetime still gives the admin a day")

	caPEM, err := os.ReadFile(creds.CA)
	require.NoError(t, err)
	blk, _ := pem.Decode(caPEM)
	require.NotNil(t, blk)
	bundles := certs.NewBundleSet()
	bundles.Set(ca.TrustDomain, []*x509.Certificate{ca.Cert})
	got, _, err := certs.VerifyChain(pair.Certificate, bundles, time.Now())
	require.NoError(t, err)
	require.Equal(t, id, got)
	require.Equal(t, ca.Cert.Raw, blk.Bytes)

	// Written again (a restart with the same --data-dir): replaced.
	again, err := c.writeAdminCreds(time.Hour)
	require.NoError(t, err)
	require.Equal(t, creds, again)
}
