package gateway

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// grpcBackend serves the gRPC health service on 127.0.0.1, naming cluster
// in every response's header metadata ("x-cluster").
func grpcBackend(t *testing.T, cluster string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-cluster", cluster))
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// TestL7GRPCUnaryBalancesEachCall: unary calls from north over one h2c
// connection (a real gRPC client and servers) are spread over both
// exporting clusters, status and trailers intact.
func TestL7GRPCUnaryBalancesEachCall(t *testing.T) {
	f := newEgressFixture(t,
		egressClusterSpec{name: "east", region: "r1", zone: "z1", instances: 1},
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 1},
		egressClusterSpec{name: "north", region: "r3", zone: "z3", instances: 1})
	f.exportApp("east", grpcBackend(t, "east"), AppProtocolGRPC)
	f.exportApp("west", grpcBackend(t, "west"), AppProtocolGRPC)
	f.importApp("north", AppProtocolGRPC)
	f.start()
	conn, err := grpc.NewClient(f.vip("north/gw-0", egressVIP), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	counts := map[string]int{}
	const n = 200
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var md metadata.MD
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
		cancel()
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
		require.Len(t, md.Get("x-cluster"), 1)
		counts[md.Get("x-cluster")[0]]++
	}
	require.GreaterOrEqual(t, counts["east"], n*3/10, "counts %v", counts)
	require.GreaterOrEqual(t, counts["west"], n*3/10, "counts %v", counts)
	// An unknown method: the backend's status travels back in trailers.
	err = conn.Invoke(context.Background(), "/demo.Nope/Missing", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	require.ErrorContains(t, err, "Unimplemented")
}
