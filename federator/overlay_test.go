package federator

import (
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TestServedExport checks that the served copy of a source record says
// what a deep copy with the stored schema version and creation time says,
// and leaves the source's record as it was.
func TestServedExport(t *testing.T) {
	x := &causewayv1.ExportRecord{
		Namespace: "ns", Name: "svc", Cluster: "east", Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
		Ports:           []*causewayv1.ServicePort{{Name: "http", Port: 80, Protocol: causewayv1.Protocol_PROTOCOL_TCP}},
		SessionAffinity: "ClientIP", SessionAffinityTimeoutSeconds: 30,
		ReadyPerZone: map[string]uint32{"east-a": 2},
		Endpoints:    []*causewayv1.Endpoint{{}},
		Routing:      causewayv1.RoutingPolicy_ROUTING_POLICY_LOCAL_DIRECT, ClusterIp: "10.0.0.1",
	}
	before := proto.Clone(x)
	created := timestamppb.New(time.Unix(1700000000, 0))
	want := proto.Clone(x).(*causewayv1.ExportRecord)
	want.SchemaVersion, want.Created = store.SchemaVersion, created

	got := servedExport(x, created)
	require.True(t, proto.Equal(want, got), "served %v, want %v", got, want)
	require.True(t, proto.Equal(before, x), "the source's record changed: %v", x)
	require.Nil(t, x.GetCreated())
}
