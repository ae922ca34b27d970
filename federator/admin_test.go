package federator

import (
	"context"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

func requireCode(t *testing.T, want codes.Code, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, want, status.Code(err), "error: %v", err)
}

// Over 80 lines: one scenario whose steps share the servers it starts.
func TestAdminListDrainUndrainRemove(t *testing.T) {
	_, cli := etcdtest.Start(t)
	east := startAdminCluster(t, cli, "east", 1, adminEchoClockExports)
	west := startAdminCluster(t, cli, "west", 2, adminEchoExports)
	east.announceGateway(t, "127.0.0.1:4443")
	adm := causewayv1.NewAdminClient(west.dial(t, west.serve(t, AdminOptions{}), west.ca, AdminComponent))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	echo, clock := catalog.ServiceKey{Namespace: "demo", Name: "echo"}, catalog.ServiceKey{Namespace: "demo", Name: "clock"}
	adminWaitView(t, west.fed, "both clusters' imports and east's gateway", func(v *catalog.View) bool {
		e, ok1 := v.Import("west", echo)
		_, ok2 := v.Import("west", clock)
		ee, ok3 := v.Import("east", echo)
		_, ok4 := v.Import("east", clock)
		return ok1 && ok2 && ok3 && ok4 && len(e.GetClusters()) == 2 && len(ee.GetClusters()) == 2 && len(v.Gateways("east")) == 1
	})

	// Clusters: both, with locality, gateways and export counts.
	cl, err := adm.ListClusters(ctx, &causewayv1.ListClustersRequest{})
	require.NoError(t, err)
	require.Len(t, cl.GetClusters(), 2)
	e, w := cl.GetClusters()[0], cl.GetClusters()[1]
	require.Equal(t, "east", e.GetName())
	require.Equal(t, "r-east", e.GetRegion())
	require.Equal(t, "z-east", e.GetZone())
	require.Equal(t, "east.clusterset.local", e.GetTrustDomain())
	require.Equal(t, []string{"10.0.1.0/24"}, e.GetVipRanges())
	require.Equal(t, uint32(2), e.GetExports())
	require.False(t, e.GetLocal())
	require.True(t, w.GetLocal())
	require.Equal(t, uint32(1), w.GetExports())
	require.Len(t, e.GetGateways(), 1)
	gw := e.GetGateways()[0]
	require.Equal(t, "gw-0", gw.GetInstance())
	require.Equal(t, []string{"127.0.0.1:4443"}, gw.GetAddresses())
	require.Equal(t, causewayv1.LeaseState_LEASE_STATE_LIVE, gw.GetLeaseState())
	require.Positive(t, gw.GetLeaseTtlSeconds())
	require.Empty(t, w.GetGateways())

	// Exports: sorted by service then cluster, with ports, readiness, type.
	ex, err := adm.ListExports(ctx, &causewayv1.ListExportsRequest{})
	require.NoError(t, err)
	require.Len(t, ex.GetServices(), 2)
	require.Equal(t, "clock", ex.GetServices()[0].GetName())
	echoX := ex.GetServices()[1]
	require.Equal(t, "echo", echoX.GetName())
	require.Len(t, echoX.GetClusters(), 2)
	ee := echoX.GetClusters()[0]
	require.Equal(t, "east", ee.GetCluster())
	require.Equal(t, causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP, ee.GetType())
	require.Equal(t, map[string]uint32{"z-east": 1, "z-east-b": 1}, ee.GetReadyPerZone())
	require.Equal(t, uint32(2), ee.GetReadyEndpoints())
	require.Equal(t, uint32(8080), ee.GetPorts()[0].GetPort())
	require.NotNil(t, ee.GetCreated())
	require.Equal(t, causewayv1.RoutingPolicy_ROUTING_POLICY_GATEWAY, ee.GetRouting())
	require.False(t, ee.GetDrained())
	other, err := adm.ListExports(ctx, &causewayv1.ListExportsRequest{Namespace: "other"})
	require.NoError(t, err)
	require.Empty(t, other.GetServices())
	_, err = adm.ListExports(ctx, &causewayv1.ListExportsRequest{Namespace: "Bad_NS"})
	requireCode(t, codes.InvalidArgument, err)

	// Imports: the asked cluster's, or the answering federator's.
	im, err := adm.ListImports(ctx, &causewayv1.ListImportsRequest{Cluster: "east"})
	require.NoError(t, err)
	require.Equal(t, "east", im.GetCluster())
	require.Len(t, im.GetImports(), 2)
	require.Equal(t, "clock", im.GetImports()[0].GetName())
	im, err = adm.ListImports(ctx, &causewayv1.ListImportsRequest{})
	require.NoError(t, err)
	require.Equal(t, "west", im.GetCluster())
	require.Equal(t, []string{"east", "west"}, im.GetImports()[1].GetClusters())
	require.Len(t, im.GetImports()[1].GetIps(), 1)
	_, err = adm.ListImports(ctx, &causewayv1.ListImportsRequest{Cluster: "ghost"})
	requireCode(t, codes.NotFound, err)
	_, err = adm.ListImports(ctx, &causewayv1.ListImportsRequest{Cluster: "Ghost"})
	requireCode(t, codes.InvalidArgument, err)

	// Status of the answering federator.
	st, err := adm.Status(ctx, &causewayv1.StatusRequest{})
	require.NoError(t, err)
	require.Equal(t, "west", st.GetCluster())
	require.Equal(t, "west.clusterset.local", st.GetTrustDomain())
	require.True(t, st.GetSynced())
	require.True(t, st.GetEtcdReachable(), st.GetEtcdError())
	require.Positive(t, st.GetCatalogRevision())
	require.GreaterOrEqual(t, st.GetEtcdRevision(), st.GetCatalogRevision())
	require.Nil(t, st.GetStaleSince())
	require.Equal(t, uint32(2), st.GetCounts().GetClusters())
	require.Equal(t, uint32(2), st.GetCounts().GetServices())
	require.Equal(t, uint32(3), st.GetCounts().GetExports())
	require.Equal(t, uint32(2), st.GetCounts().GetImports())
	require.Equal(t, uint32(1), st.GetCounts().GetGateways())
	require.Eventually(t, func() bool {
		st, err = adm.Status(ctx, &causewayv1.StatusRequest{})
		return err == nil && st.GetIsLeader() && st.GetLeader() == "west-0"
	}, 15*time.Second, 50*time.Millisecond, "west's only replica never reported as leader")

	// Drain one service of west, the answering federator's own cluster:
	// visible at once, idempotent.
	d, err := adm.Drain(ctx, &causewayv1.DrainRequest{Cluster: "west", Namespace: "demo", Name: "echo", Reason: "upgrade"})
	require.NoError(t, err)
	require.True(t, d.GetChanged())
	since := d.GetDrain().GetSince().AsTime()
	ex, err = adm.ListExports(ctx, &causewayv1.ListExportsRequest{Namespace: "demo"})
	require.NoError(t, err)
	require.True(t, ex.GetServices()[1].GetClusters()[1].GetDrained(), "west's echo not drained")
	require.False(t, ex.GetServices()[1].GetClusters()[0].GetDrained(), "east's echo drained")
	d, err = adm.Drain(ctx, &causewayv1.DrainRequest{Cluster: "west", Namespace: "demo", Name: "echo", Reason: "again"})
	require.NoError(t, err)
	require.False(t, d.GetChanged())
	require.Equal(t, "upgrade", d.GetDrain().GetReason())
	require.Equal(t, since, d.GetDrain().GetSince().AsTime())
	require.True(t, west.fed.Feed().View().Drained("west", echo))

	for name, tc := range map[string]struct {
		req  *causewayv1.DrainRequest
		code codes.Code
	}{
		"another cluster":        {&causewayv1.DrainRequest{Cluster: "east"}, codes.PermissionDenied},
		"unknown cluster":        {&causewayv1.DrainRequest{Cluster: "ghost"}, codes.PermissionDenied},
		"service not exported":   {&causewayv1.DrainRequest{Cluster: "west", Namespace: "demo", Name: "clock"}, codes.NotFound},
		"bad cluster":            {&causewayv1.DrainRequest{Cluster: "East"}, codes.InvalidArgument},
		"namespace without name": {&causewayv1.DrainRequest{Cluster: "west", Namespace: "demo"}, codes.InvalidArgument},
		"bad name":               {&causewayv1.DrainRequest{Cluster: "west", Namespace: "demo", Name: "a/b"}, codes.InvalidArgument},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := adm.Drain(ctx, tc.req)
			requireCode(t, tc.code, err)
		})
	}

	// Drain the whole cluster: every export of it is drained.
	_, err = adm.Drain(ctx, &causewayv1.DrainRequest{Cluster: "west"})
	require.NoError(t, err)
	cl, err = adm.ListClusters(ctx, &causewayv1.ListClustersRequest{})
	require.NoError(t, err)
	require.True(t, cl.GetClusters()[1].GetDrained())
	require.Equal(t, []string{"demo/echo"}, cl.GetClusters()[1].GetDrainedServices())
	require.False(t, cl.GetClusters()[0].GetDrained())

	// Undrain the service: idempotent; a service not exported is NotFound.
	u, err := adm.Undrain(ctx, &causewayv1.UndrainRequest{Cluster: "west", Namespace: "demo", Name: "echo"})
	require.NoError(t, err)
	require.True(t, u.GetChanged())
	require.False(t, west.fed.Feed().View().Entries()["drain/west/demo/echo"] != nil, "undrain not visible")
	u, err = adm.Undrain(ctx, &causewayv1.UndrainRequest{Cluster: "west", Namespace: "demo", Name: "echo"})
	require.NoError(t, err)
	require.False(t, u.GetChanged())
	_, err = adm.Undrain(ctx, &causewayv1.UndrainRequest{Cluster: "east"})
	requireCode(t, codes.PermissionDenied, err)
	_, err = adm.Undrain(ctx, &causewayv1.UndrainRequest{Cluster: "west", Namespace: "demo", Name: "nope"})
	requireCode(t, codes.NotFound, err)
	require.ErrorContains(t, err, "cluster west does not export demo/nope")

	// The federator's own cluster is removed only by force; another
	// cluster not at all (the clusterset admin does that, over etcd).
	_, err = adm.RemoveCluster(ctx, &causewayv1.RemoveClusterRequest{Name: "west"})
	requireCode(t, codes.FailedPrecondition, err)
	require.ErrorContains(t, err, "pass --force")
	_, err = adm.RemoveCluster(ctx, &causewayv1.RemoveClusterRequest{Name: "east", Force: true})
	requireCode(t, codes.PermissionDenied, err)
	require.ErrorContains(t, err, "clusterset-admin")
	_, err = adm.RemoveCluster(ctx, &causewayv1.RemoveClusterRequest{Name: "bad.name"})
	requireCode(t, codes.InvalidArgument, err)
	_, ok := west.fed.Feed().View().Cluster("east")
	require.True(t, ok, "east is still a member")
}

func TestAdminRequiresAdminIdentity(t *testing.T) {
	_, cli := etcdtest.Start(t)
	west := startAdminCluster(t, cli, "west", 2, adminEchoExports)
	other := startAdminCluster(t, cli, "east", 1, adminEchoExports)
	addr := west.serve(t, AdminOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adminWaitView(t, west.fed, "synced", func(v *catalog.View) bool { _, ok := v.Cluster("west"); return ok })

	// The cluster's gateway may watch the catalog but not administer.
	gw := west.dial(t, addr, west.ca, "gateway")
	for _, m := range causewayv1.Admin_ServiceDesc.Methods {
		t.Run("gateway "+m.MethodName, func(t *testing.T) {
			err := gw.Invoke(ctx, "/"+causewayv1.Admin_ServiceDesc.ServiceName+"/"+m.MethodName, &emptypb.Empty{}, &emptypb.Empty{})
			requireCode(t, codes.PermissionDenied, err)
		})
	}
	stream, err := causewayv1.NewCatalogClient(gw).Watch(ctx, &causewayv1.WatchRequest{Cluster: "west"})
	require.NoError(t, err)
	snap, err := stream.Recv()
	require.NoError(t, err)
	require.True(t, snap.GetReset_())

	// Another cluster's admin is not this cluster's admin: the handshake fails.
	_, err = causewayv1.NewAdminClient(west.dial(t, addr, other.ca, AdminComponent)).Status(ctx, &causewayv1.StatusRequest{})
	requireCode(t, codes.Unavailable, err)

	// This cluster's admin may.
	_, err = causewayv1.NewAdminClient(west.dial(t, addr, west.ca, AdminComponent)).Status(ctx, &causewayv1.StatusRequest{})
	require.NoError(t, err)
}

func TestAdminStatusReportsUnreachableEtcd(t *testing.T) {
	srv, _ := etcdtest.Start(t)
	// The federator reaches etcd through a proxy the test cuts.
	proxy := startTCPProxy(t, srv.Endpoint())
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{proxy.addr()}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	west := startAdminCluster(t, cli, "west", 2, adminEchoExports)
	adm := causewayv1.NewAdminClient(west.dial(t, west.serve(t, AdminOptions{EtcdTimeout: 300 * time.Millisecond}), west.ca, AdminComponent))
	adminWaitView(t, west.fed, "synced", func(v *catalog.View) bool { _, ok := v.Cluster("west"); return ok })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cut := time.Now()
	proxy.close()
	var st *causewayv1.StatusResponse
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, err := adm.Status(ctx, &causewayv1.StatusRequest{})
		if !assert.NoError(c, err, "status must answer without etcd") {
			return
		}
		st = got
		assert.NotNil(c, st.GetStaleSince(), "status never reported the view stale")
	}, 10*time.Second, 50*time.Millisecond)
	require.False(t, st.GetEtcdReachable())
	require.NotEmpty(t, st.GetEtcdError())
	require.True(t, st.GetSynced(), "synced means listed once; losing etcd does not undo it")
	require.WithinDuration(t, cut, st.GetStaleSince().AsTime(), 5*time.Second)
	require.Equal(t, uint32(1), st.GetCounts().GetClusters(), "the last view is still reported")

	cl, err := adm.ListClusters(ctx, &causewayv1.ListClustersRequest{})
	require.NoError(t, err)
	require.Len(t, cl.GetClusters(), 1)
}
