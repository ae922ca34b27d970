package store

import (
	"context"
	"net/netip"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestAdminDrainIsIdempotent(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	first := &causewayv1.DrainRecord{Cluster: "east", Namespace: "demo", Name: "echo", Reason: "maintenance",
		Since: timestamppb.New(time.Unix(1000, 0))}
	got, created, err := s.CreateDrain(ctx, first)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "maintenance", got.GetReason())

	got, created, err = s.CreateDrain(ctx, &causewayv1.DrainRecord{Cluster: "east", Namespace: "demo", Name: "echo",
		Reason: "again", Since: timestamppb.Now()})
	require.NoError(t, err)
	require.False(t, created, "a second drain rewrote the record")
	require.Equal(t, "maintenance", got.GetReason())
	require.Equal(t, int64(1000), got.GetSince().GetSeconds())

	_, created, err = s.CreateDrain(ctx, &causewayv1.DrainRecord{Cluster: "east"})
	require.NoError(t, err)
	require.True(t, created, "a cluster drain is a different record from a service drain")

	removed, err := s.RemoveDrain(ctx, "east", "demo", "echo")
	require.NoError(t, err)
	require.True(t, removed)
	removed, err = s.RemoveDrain(ctx, "east", "demo", "echo")
	require.NoError(t, err)
	require.False(t, removed)
	entries, _, err := s.List(ctx, Prefix+KindDrain+"/")
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "drain/east", entries[0].GetKey())
}

func TestAdminRemoveClusterDeletesOnlyThatCluster(t *testing.T) {
	s, cli, _ := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range []string{"east", "east2"} {
		require.NoError(t, s.PutCluster(ctx, &causewayv1.ClusterRecord{Name: c}))
		require.NoError(t, s.PutBundle(ctx, &causewayv1.TrustBundle{Cluster: c}))
		require.NoError(t, s.PutImport(ctx, &causewayv1.ImportRecord{Cluster: c, Namespace: "demo", Name: "echo"}))
		_, err := s.AllocateVIP(ctx, c, "demo", "echo", VIPRanges{netip.MustParsePrefix("10.0.0.0/24")})
		require.NoError(t, err)
		_, _, err = s.CreateDrain(ctx, &causewayv1.DrainRecord{Cluster: c})
		require.NoError(t, err)
		_, _, err = s.CreateDrain(ctx, &causewayv1.DrainRecord{Cluster: c, Namespace: "demo", Name: "echo"})
		require.NoError(t, err)
		sess, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
		require.NoError(t, err)
		t.Cleanup(func() { _ = sess.Close() })
		require.NoError(t, s.RegisterGateway(ctx, sess, &causewayv1.GatewayRecord{Cluster: c, Instance: "gw-0"}))
		// More exports than one transaction takes.
		for i := 0; i < maxTxnOps+3; i++ {
			require.NoError(t, s.PutExport(ctx, &causewayv1.ExportRecord{Namespace: "demo", Name: "svc" + itoa(i), Cluster: c}))
		}
	}
	leases, err := s.GatewayLeases(ctx)
	require.NoError(t, err)
	require.Len(t, leases, 2)
	require.False(t, leases["east/gw-0"].Expired)
	require.Positive(t, leases["east/gw-0"].TTL)

	r, err := s.RemoveCluster(ctx, "east")
	require.NoError(t, err)
	require.Equal(t, Removed{Exports: maxTxnOps + 3, Gateways: 1, Drains: 2, Imports: 1, VIPs: 1, Bundles: 1, Clusters: 1}, r)

	resp, err := cli.Get(ctx, Prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	require.NoError(t, err)
	for _, kv := range resp.Kvs {
		_, seg, err := ParseKey(string(kv.Key))
		require.NoError(t, err)
		require.NotContains(t, seg, "east", "%s survived the removal", kv.Key)
	}
	require.Len(t, resp.Kvs, 7+maxTxnOps+3, "east2 lost records")

	again, err := s.RemoveCluster(ctx, "east")
	require.NoError(t, err)
	require.Zero(t, again.Total())
	_, err = s.RemoveCluster(ctx, "a/b")
	require.Error(t, err)

	rev, err := s.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, resp.Header.Revision, rev)
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
