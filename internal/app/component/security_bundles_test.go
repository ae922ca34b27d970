package component_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/app/join"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// eastWest starts east (federator) and west (federator, gateway, backend)
// on 127.<octet>.x.1 and waits until west trusts east's bundle.
func eastWest(t *testing.T, octet int) (*secSet, *secCluster, *secCluster) {
	t.Helper()
	s := newSecSet(t, octet, []string{"east", "west"}, map[string]bool{"west": true})
	east, west := s.clusters["east"], s.clusters["west"]
	s.startFederator(east)
	s.startFederator(west)
	s.startGateway(west)
	adm := adminClient(t, west)
	require.Eventually(t, func() bool { return trustOf(t, adm, "east") == "trusted" }, 10*time.Second, 20*time.Millisecond)
	return s, east, west
}

// eastLeaf is a gateway leaf from east's real CA.
func eastLeaf(t *testing.T, east *secCluster) (*certs.CA, []*x509.Certificate) {
	t.Helper()
	cas, err := certs.LoadCASet(east.caDir)
	require.NoError(t, err)
	ca, err := cas.SigningCA()
	require.NoError(t, err)
	return ca, cas.Authorities()
}

func westCAs(t *testing.T, west *secCluster) []*x509.Certificate {
	return []*x509.Certificate{west.caCert(t)}
}

// TestSecurityF1_ForgedCAInBundleRefused: an etcd writer adds its own CA to
// bundles/east (next to east's, re-signed by itself, as a plain extra
// authority would be); a gateway leaf minted from it is refused by west's
// gateway, while east's real leaves keep working. On the old code the
// gateway trusted whatever bundles/east held.
func TestSecurityF1_ForgedCAInBundleRefused(t *testing.T) {
	secMu.Lock()
	defer secMu.Unlock()
	s, east, west := eastWest(t, 171)
	realCA, _ := eastLeaf(t, east)
	code, err := tunnelTo(t, west, westCAs(t, west), "east", leafFrom(t, realCA))
	require.NoError(t, err)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_OK, code, "control: east's real gateway identity is accepted")

	evil, err := certs.NewCA(east.td(), time.Hour, time.Now())
	require.NoError(t, err)
	published := s.getBundle("east")
	// East's federator would put its bundle back within milliseconds
	// (TestSecurityF8_OwnRecordsHeal); stopped, the forgeries stay in etcd
	// until west has judged them.
	s.stopFederator(east)
	for name, forged := range map[string]*causewayv1.TrustBundle{
		"extra authority, old chain": func() *causewayv1.TrustBundle {
			b := proto.Clone(published).(*causewayv1.TrustBundle)
			b.X509Authorities = append(b.X509Authorities, evil.Cert.Raw)
			b.Sequence++
			return b
		}(),
		"chain extended with a link signed by the forger": func() *causewayv1.TrustBundle {
			b, err := certs.NextSignedBundle(nil, "east", east.td(), evil, []*x509.Certificate{realCA.Cert, evil.Cert}, published.GetSequence()+1)
			require.NoError(t, err)
			b.Chain = append(proto.Clone(published).(*causewayv1.TrustBundle).GetChain(), b.Chain...)
			return b
		}(),
		"unsigned legacy record": {Cluster: "east", TrustDomain: east.td(), Sequence: published.GetSequence() + 2,
			X509Authorities: [][]byte{realCA.Cert.Raw, evil.Cert.Raw}},
	} {
		t.Run(name, func(t *testing.T) {
			s.putBundle("east", forged)
			s.catalogMarker("east", west)
			_, err := tunnelTo(t, west, westCAs(t, west), "east", leafFrom(t, evil))
			require.Error(t, err, "a leaf of the forged CA must be refused")
			code, err := tunnelTo(t, west, westCAs(t, west), "east", leafFrom(t, realCA))
			require.NoError(t, err)
			require.Equal(t, causewayv1.StreamCode_STREAM_CODE_OK, code, "east's real identity still works")
			require.Equal(t, "behind", trustOf(t, adminClient(t, west), "east"), "the refusal is visible")
		})
	}
	require.Positive(t, metric(t, "http://"+west.addr(9090)+"/metrics", "causeway_federator_bundle_refusals_total", `reason="not_chained"`))
}

// TestSecurityF1_ForcedJoinCAReplacementRefused: `causeway join --force`
// replaces east's registration and CA in etcd; peers keep trusting east's
// old CA and refuse the new one until west's operator re-pins east with
// the new CA's fingerprint (causeway clusters trust).
func TestSecurityF1_ForcedJoinCAReplacementRefused(t *testing.T) {
	secMu.Lock()
	defer secMu.Unlock()
	s, east, west := eastWest(t, 172)
	s.stop(east) // the legitimate case: east is being rebuilt

	res, err := join.Run(context.Background(), join.Options{Cluster: "east", Etcd: join.EtcdOptions{Endpoints: []string{s.etcd.AdminCreds.Endpoint},
		CAFile: s.etcd.AdminCreds.CAFile, ServerName: s.etcd.AdminCreds.ServerName,
		Username: s.etcd.AdminCreds.Username, PasswordFile: s.etcd.AdminCreds.PasswordFile},
		Out: t.TempDir(), Force: true})
	require.NoError(t, err)
	require.True(t, res.Replaced)
	newCAs, err := certs.LoadCASet(res.CADir)
	require.NoError(t, err)
	newCA, err := newCAs.SigningCA()
	require.NoError(t, err)
	require.Equal(t, certs.Fingerprint(newCA.Cert), res.Fingerprint, "join prints the fingerprint to pin")

	s.catalogMarker("east", west)
	_, err = tunnelTo(t, west, westCAs(t, west), "east", leafFrom(t, newCA))
	require.Error(t, err, "the new, unchained CA is refused")
	adm := adminClient(t, west)
	require.Equal(t, "behind", trustOf(t, adm, "east"))

	// A wrong fingerprint changes nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	other, err := certs.NewCA(east.td(), time.Hour, time.Now())
	require.NoError(t, err)
	_, err = adm.TrustCluster(ctx, &causewayv1.TrustClusterRequest{Cluster: "east", Fingerprint: certs.Fingerprint(other.Cert)})
	require.ErrorContains(t, err, "no published CA has the pinned fingerprint")

	// The operator re-pins east: from then on its new CA is accepted.
	resp, err := adm.TrustCluster(ctx, &causewayv1.TrustClusterRequest{Cluster: "east", Fingerprint: res.Fingerprint})
	require.NoError(t, err)
	require.True(t, resp.GetChanged())
	require.Equal(t, []string{res.Fingerprint}, resp.GetFingerprints())
	require.Eventually(t, func() bool {
		code, err := tunnelTo(t, west, westCAs(t, west), "east", leafFrom(t, newCA))
		return err == nil && code == causewayv1.StreamCode_STREAM_CODE_OK
	}, 10*time.Second, 50*time.Millisecond, "after the re-pin, the new CA is accepted")
	require.Equal(t, "trusted", trustOf(t, adm, "east"))
}

// TestSecurityF3_ForgedOwnBundleNoLockout: an etcd writer replaces west's
// own bundle with a CA of its own. West's gateway keeps verifying its
// federator against its caFile and what the federator itself serves: it
// renews its certificate and stays ready, and a gateway started afterwards
// still gets its certificate and catalog. On the old code the gateway took
// its federator's trust anchor from etcd and was locked out until restart.
func TestSecurityF3_ForgedOwnBundleNoLockout(t *testing.T) {
	secMu.Lock()
	defer secMu.Unlock()
	s := newSecSet(t, 173, []string{"west"}, map[string]bool{"west": true})
	west := s.clusters["west"]
	west.leafLifetime = "3s" // renewals every 2s: each needs a verified federator
	s.startFederator(west)
	s.startGateway(west)

	evil, err := certs.NewCA(west.td(), time.Hour, time.Now())
	require.NoError(t, err)
	forged, err := certs.NextSignedBundle(nil, "west", west.td(), evil, []*x509.Certificate{evil.Cert}, uint64(time.Now().UnixNano()))
	require.NoError(t, err)
	s.putBundle("west", forged)
	s.catalogMarker("west", west)

	// The federator restarts (it publishes the real bundle again): the
	// gateway must open new connections to it, verified against what it
	// trusts for its own cluster, which the forgery did not reach.
	gwMetrics := "http://" + west.addr(9091) + "/metrics"
	reconnects := metric(t, gwMetrics, "causeway_catalog_reconnects_total", `component="gateway"`)
	s.stopFederator(west)
	s.startFederator(west)
	require.Eventually(t, func() bool {
		return metric(t, gwMetrics, "causeway_catalog_reconnects_total", `component="gateway"`) > reconnects &&
			metric(t, gwMetrics, "causeway_catalog_stale_since_seconds", `component="gateway"`) == 0
	}, 15*time.Second, 50*time.Millisecond, "the gateway did not get its catalog back from its federator")

	// The gateway renews twice more after the forgery, over a verified
	// connection to its federator.
	serial := func() string {
		leaf := gatewayLeaf(t, west)
		return certs.SerialHex(leaf)
	}
	seen := map[string]bool{serial(): true}
	require.Eventually(t, func() bool {
		seen[serial()] = true
		return len(seen) >= 3
	}, 15*time.Second, 100*time.Millisecond, "the gateway could not renew its certificate after the forgery")
	resp, err := http.Get("http://" + west.addr(9091) + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the gateway stays ready")

	// A gateway (re)started now still bootstraps.
	west.gwCancel()
	<-west.gwDone
	west.gwCancel = nil
	s.startGateway(west)
}

// gatewayLeaf is the leaf c's gateway presents (the TLS handshake may
// then fail on the gateway's side; the chain has been seen by then).
func gatewayLeaf(t *testing.T, c *secCluster) *x509.Certificate {
	t.Helper()
	bundles := certs.NewBundleSet()
	bundles.Set(c.td(), []*x509.Certificate{c.caCert(t)})
	ca, err := certs.NewCA(c.td(), time.Hour, time.Now())
	require.NoError(t, err)
	tlsConf := certs.ClientConfig(certs.TLSOptions{Source: certs.NewStaticSource(leafFrom(t, ca)), Bundles: bundles,
		NextProtos: []string{"causeway/1"}})
	var got *x509.Certificate
	verify := tlsConf.VerifyPeerCertificate
	tlsConf.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		if len(raw) > 0 {
			got, _ = x509.ParseCertificate(raw[0])
		}
		return verify(raw, chains)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := quic.DialAddr(ctx, c.addr(4433), tlsConf, &quic.Config{}); err == nil {
		_ = conn.CloseWithError(0, "")
	}
	require.NotNil(t, got, "no certificate from the gateway")
	return got
}

// TestBundleRotationFollowedByPeers: east rotates its CA with the three
// steps of `causeway certs rotate-ca` while its federator runs; west
// follows each signed step by itself (no re-pin), accepting leaves of the
// new CA from step 1 on and east's old leaves until step 3, and its trust
// state survives a restart of west's federator.
func TestBundleRotationFollowedByPeers(t *testing.T) {
	secMu.Lock()
	defer secMu.Unlock()
	s, east, west := eastWest(t, 174)
	oldCA, _ := eastLeaf(t, east)
	oldLeaf := leafFrom(t, oldCA)
	adm := adminClient(t, west)
	fingerprints := func() []string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := adm.ListClusters(ctx, &causewayv1.ListClustersRequest{})
		require.NoError(t, err)
		for _, ci := range resp.GetClusters() {
			if ci.GetName() == "east" && ci.GetTrust() == "trusted" {
				return ci.GetFingerprints()
			}
		}
		return nil
	}
	accepted := func(leaf *tls.Certificate) bool {
		code, err := tunnelTo(t, west, westCAs(t, west), "east", leaf)
		return err == nil && code == causewayv1.StreamCode_STREAM_CODE_OK
	}
	step := func() certs.RotationState {
		st, err := certs.RotateCAStep(east.caDir, certs.RotationOptions{TrustDomain: east.td(), Force: true})
		require.NoError(t, err)
		return st
	}

	step() // 1: publish {old, new}, signed by old
	next, err := certs.ReadCertificatesFile(filepath.Join(east.caDir, certs.NextCACertFile))
	require.NoError(t, err)
	want := []string{certs.Fingerprint(oldCA.Cert), certs.Fingerprint(next[0])}
	require.Eventually(t, func() bool { return slices.Equal(fingerprints(), want) }, 10*time.Second, 50*time.Millisecond,
		"west follows step 1")
	require.True(t, accepted(oldLeaf), "old leaves still accepted")

	step() // 2: sign with the new CA (the bundle is unchanged)
	newSet, err := certs.LoadCASet(east.caDir)
	require.NoError(t, err)
	newCA, err := newSet.SigningCA()
	require.NoError(t, err)
	require.True(t, newCA.Cert.Equal(next[0]))
	require.Eventually(t, func() bool { return accepted(leafFrom(t, newCA)) }, 10*time.Second, 50*time.Millisecond)
	require.True(t, accepted(oldLeaf), "old leaves accepted until step 3")

	step() // 3: drop the old CA, signed by the new one
	require.Eventually(t, func() bool { return slices.Equal(fingerprints(), want[1:]) }, 10*time.Second, 50*time.Millisecond,
		"west follows step 3")
	require.Eventually(t, func() bool { return !accepted(oldLeaf) }, 10*time.Second, 50*time.Millisecond, "old leaves refused after step 3")
	require.True(t, accepted(leafFrom(t, newCA)))

	// West's trust state is persisted signed by west's CA: a restarted
	// federator starts from it (no new acceptance through its pin).
	accepts := func() int { return strings.Count(west.fedLog.String(), `msg="peer trust bundle accepted"`) }
	before := accepts()
	s.stopFederator(west)
	s.startFederator(west)
	adm = adminClient(t, west)
	require.Eventually(t, func() bool { return slices.Equal(fingerprints(), want[1:]) }, 10*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { return accepted(leafFrom(t, newCA)) }, 15*time.Second, 100*time.Millisecond)
	require.Equal(t, before, accepts(), "the restarted federator used its stored trust state")

	requireForgedTrustStateIgnored(t, s, east, west, func() bool { return slices.Equal(fingerprints(), want[1:]) })
}

// requireForgedTrustStateIgnored: an etcd writer cannot forge west's
// stored trust in east: a state naming its own CA, signed by itself, is
// ignored at west's next start (the pin applies again, and trusted holds).
func requireForgedTrustStateIgnored(t *testing.T, s *secSet, east, west *secCluster, trusted func() bool) {
	t.Helper()
	evil, err := certs.NewCA(east.td(), time.Hour, time.Now())
	require.NoError(t, err)
	forged := &causewayv1.TrustState{Verifier: "west", Peer: "east", TrustDomain: east.td(), Sequence: 1 << 62,
		X509Authorities: [][]byte{evil.Cert.Raw}, Source: "operator"}
	require.NoError(t, certs.SignTrustState(evil, forged))
	forged.SchemaVersion = 1
	b, err := proto.Marshal(forged)
	require.NoError(t, err)
	_, err = s.cli.Put(context.Background(), store.TrustKey("west", "east"), string(b))
	require.NoError(t, err)
	s.stopFederator(west)
	s.startFederator(west)
	require.Eventually(t, trusted, 10*time.Second, 50*time.Millisecond)
	require.Contains(t, west.fedLog.String(), "ignoring stored trust state")
	_, err = tunnelTo(t, west, westCAs(t, west), "east", leafFrom(t, evil))
	require.Error(t, err, "the forged state's CA is not trusted")
}
