package federator

import (
	"context"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestAnnounceGateway: a gateway's announcement lives exactly as long as
// its call (the record is gone at once when the caller goes away), and
// only this cluster's gateway identity may announce, with valid fields.
func TestAnnounceGateway(t *testing.T) {
	_, cli := etcdtest.Start(t)
	east := startAdminCluster(t, cli, "east", 1, adminEchoExports)
	west := startAdminCluster(t, cli, "west", 2, adminEchoExports)
	addr := east.serve(t, AdminOptions{})
	gw := causewayv1.NewCatalogClient(east.dial(t, addr, east.ca, "gateway"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := gw.AnnounceGateway(ctx, &causewayv1.AnnounceGatewayRequest{Instance: "gw-7", Addresses: []string{"127.0.0.1:4433"}})
	require.NoError(t, err)
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.NotZero(t, resp.GetLeaseId())
	adminWaitView(t, east.fed, "gw-7 announced", func(v *catalog.View) bool {
		gws := v.Gateways("east")
		return len(gws) == 1 && gws[0].GetInstance() == "gw-7"
	})
	start := time.Now()
	cancel()
	adminWaitView(t, east.fed, "gw-7 withdrawn", func(v *catalog.View) bool { return len(v.Gateways("east")) == 0 })
	require.Less(t, time.Since(start), GatewayLeaseTTL, "the record outlived the call until its lease expired")

	for _, tc := range []struct {
		name      string
		issuer    *adminCluster
		component string
		req       *causewayv1.AnnounceGatewayRequest
		code      codes.Code
	}{
		{"dnsshim identity", east, "dnsshim", &causewayv1.AnnounceGatewayRequest{Instance: "gw-1", Addresses: []string{"h:1"}}, codes.PermissionDenied},
		{"admin identity", east, "admin", &causewayv1.AnnounceGatewayRequest{Instance: "gw-1", Addresses: []string{"h:1"}}, codes.PermissionDenied},
		{"bad instance", east, "gateway", &causewayv1.AnnounceGatewayRequest{Instance: "GW 1", Addresses: []string{"h:1"}}, codes.InvalidArgument},
		{"no address", east, "gateway", &causewayv1.AnnounceGatewayRequest{Instance: "gw-1"}, codes.InvalidArgument},
		{"bad address", east, "gateway", &causewayv1.AnnounceGatewayRequest{Instance: "gw-1", Addresses: []string{"h:99999"}}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := causewayv1.NewCatalogClient(east.dial(t, addr, tc.issuer.ca, tc.component))
			s, err := c.AnnounceGateway(context.Background(), tc.req)
			require.NoError(t, err)
			_, err = s.Recv()
			require.Equal(t, tc.code, status.Code(err), "%v", err)
		})
	}
	// West's gateway cannot even connect: the TLS layer accepts only
	// east's trust domain.
	c := causewayv1.NewCatalogClient(east.dial(t, addr, west.ca, "gateway"))
	s, err := c.AnnounceGateway(context.Background(), &causewayv1.AnnounceGatewayRequest{Instance: "gw-1", Addresses: []string{"h:1"}})
	if err == nil {
		_, err = s.Recv()
	}
	require.Error(t, err)
	require.Empty(t, east.fed.Feed().View().Gateways("east"))
}
