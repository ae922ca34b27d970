package federator

import (
	"context"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// TestTrustClusterFirstUse: a peer that nobody pinned is "untrusted": its
// bundle is not fed to this cluster's gateways (the catalog lacks it),
// until the operator's explicit TrustCluster; the own bundle is always fed,
// from the federator's own authorities.
func TestTrustClusterFirstUse(t *testing.T) {
	_, cli := etcdtest.Start(t)
	east := startAdminCluster(t, cli, "east", 1, adminEchoExports)
	west := startAdminCluster(t, cli, "west", 2, adminEchoExports)
	adm := causewayv1.NewAdminClient(west.dial(t, west.serve(t, AdminOptions{}), west.ca, AdminComponent))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	trust := func() map[string]*causewayv1.ClusterInfo {
		resp, err := adm.ListClusters(ctx, &causewayv1.ListClustersRequest{})
		require.NoError(t, err)
		out := map[string]*causewayv1.ClusterInfo{}
		for _, ci := range resp.GetClusters() {
			out[ci.GetName()] = ci
		}
		return out
	}
	adminWaitView(t, west.fed, "both clusters and west's own bundle", func(v *catalog.View) bool {
		_, e := v.Cluster("east")
		_, own := v.Bundles()["west"]
		return e && own
	})
	require.Eventually(t, func() bool { return trust()["east"].GetTrust() == TrustUntrusted }, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, trust()["east"].GetTrustDetail(), "causeway clusters trust east")
	require.Equal(t, TrustOwn, trust()["west"].GetTrust())
	own := west.fed.Feed().View().Bundles()["west"]
	require.EqualValues(t, store.SchemaVersion, own.GetSchemaVersion(), "the own bundle is fed as stored, or catalog clients refuse it")
	_, fed := west.fed.Feed().View().Bundles()["east"]
	require.False(t, fed, "an untrusted peer's bundle is not fed")

	_, err := adm.TrustCluster(ctx, &causewayv1.TrustClusterRequest{Cluster: "west"})
	requireCode(t, codes.InvalidArgument, err)
	_, err = adm.TrustCluster(ctx, &causewayv1.TrustClusterRequest{Cluster: "east", Fingerprint: "sha256:zz"})
	requireCode(t, codes.InvalidArgument, err)
	_, err = adm.TrustCluster(ctx, &causewayv1.TrustClusterRequest{Cluster: "nowhere"})
	requireCode(t, codes.NotFound, err)

	resp, err := adm.TrustCluster(ctx, &causewayv1.TrustClusterRequest{Cluster: "east"})
	require.NoError(t, err)
	require.True(t, resp.GetChanged())
	require.Equal(t, []string{certs.Fingerprint(east.ca.Cert)}, resp.GetFingerprints())
	adminWaitView(t, west.fed, "east's bundle fed after TrustCluster", func(v *catalog.View) bool {
		b, ok := v.Bundles()["east"]
		return ok && len(b.GetX509Authorities()) == 1
	})
	require.Equal(t, TrustTrusted, trust()["east"].GetTrust())
	again, err := adm.TrustCluster(ctx, &causewayv1.TrustClusterRequest{Cluster: "east"})
	require.NoError(t, err)
	require.False(t, again.GetChanged())
}
