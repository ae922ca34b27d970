package component

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// onceCatalog serves one snapshot on the first Watch, then is unavailable.
type onceCatalog struct {
	causewayv1.UnimplementedCatalogServer
	calls atomic.Int32
}

func (s *onceCatalog) Watch(_ *causewayv1.WatchRequest, stream grpc.ServerStreamingServer[causewayv1.WatchResponse]) error {
	if s.calls.Add(1) > 1 {
		return status.Error(codes.Unavailable, "federator gone")
	}
	if err := stream.Send(&causewayv1.WatchResponse{Reset_: true, Revision: 1}); err != nil {
		return err
	}
	return status.Error(codes.Unavailable, "federator gone")
}

// TestIdentityReady: /readyz of a gateway or DNS shim fails, naming the
// cause, when its leaf is close to expiry without a renewal, or when its
// catalog lost the federator for longer than the bound (F3's readiness
// note: a locked-out component must not look ready).
func TestIdentityReady(t *testing.T) {
	ca, err := certs.NewCA("west.clusterset.local", time.Hour, time.Now())
	require.NoError(t, err)
	id, err := certs.NewID("west.clusterset.local", "gateway")
	require.NoError(t, err)
	rot, err := certs.NewRotator(t.Context(), certs.RotatorConfig{ID: id, Signer: &certs.LocalSigner{CA: ca, Lifetime: 30 * time.Minute}})
	require.NoError(t, err)

	gs := grpc.NewServer()
	causewayv1.RegisterCatalogServer(gs, &onceCatalog{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() { _ = gs.Serve(ln) })
	defer func() { gs.Stop(); wg.Wait() }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := catalog.NewClient(causewayv1.NewCatalogClient(conn), catalog.Options{Component: "gateway",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBackoff: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	wg.Go(func() { _ = client.Run(ctx) })
	defer cancel()
	require.Eventually(t, func() bool { return !client.View().StaleSince.IsZero() }, 10*time.Second, 10*time.Millisecond)
	stale := client.View().StaleSince

	at := func(now time.Time) error { return identityCheck(rot, client, func() time.Time { return now })() }
	require.NoError(t, at(stale.Add(time.Minute)), "fresh leaf, federator lost for less than the bound")
	require.ErrorContains(t, at(stale.Add(federatorLostBound+time.Second)), "lost the federator since")

	renewAt, notAfter := rot.RenewAt(), rot.NotAfter()
	live := func() time.Time { return time.Time{} }
	leafAt := func(now time.Time) error { return identityReady(rot, live, func() time.Time { return now })() }
	require.NoError(t, leafAt(renewAt.Add(-time.Second)), "before renewal is due")
	require.NoError(t, leafAt(renewAt.Add(notAfter.Sub(renewAt)/4)), "renewal late, the leaf not yet close to expiry")
	err = leafAt(renewAt.Add(notAfter.Sub(renewAt) * 3 / 4))
	require.ErrorContains(t, err, "could not be renewed since")
	require.ErrorContains(t, err, "tokenFile", "the reason names what to check")
}
