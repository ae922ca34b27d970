package federator

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/federator/static"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// A watcher that comes back with a revision the federator remembers gets
// a delta; one with an unknown revision gets a snapshot.
func TestCatalogWatchResume(t *testing.T) {
	_, cli := etcdtest.Start(t)
	path := filepath.Join(t.TempDir(), "east.yaml")
	require.NoError(t, os.WriteFile(path, []byte("version: 1\nservices: []\n"), 0o644))
	f, err := New(Config{Cluster: "east", TrustDomain: "east.clusterset.local", Authorities: [][]byte{{1}},
		VIPRanges: []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24")}}, store.New(cli, store.Options{}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- f.Run(ctx, &static.Source{Path: path, Cluster: "east", Interval: 20 * time.Millisecond})
	}()
	t.Cleanup(func() { cancel(); <-done })

	gs := grpc.NewServer()
	causewayv1.RegisterCatalogServer(gs, f.CatalogServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	rpc := causewayv1.NewCatalogClient(conn)

	first := func(since int64) *causewayv1.WatchResponse {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		stream, err := rpc.Watch(wctx, &causewayv1.WatchRequest{Cluster: "west", SinceRevision: since})
		require.NoError(t, err)
		resp, err := stream.Recv()
		require.NoError(t, err)
		return resp
	}
	// While the federator starts it may rebuild the view of one revision
	// (its source's exports, its own bundle arrive): a watcher of the
	// older build then gets a snapshot. Once settled, resuming gets a delta.
	var snap, resumed *causewayv1.WatchResponse
	for deadline := time.Now().Add(10 * time.Second); ; {
		snap = first(0)
		require.True(t, snap.GetReset_())
		require.NotEmpty(t, snap.GetUpserts())
		resumed = first(snap.GetRevision())
		if !resumed.GetReset_() {
			break
		}
		require.True(t, time.Now().Before(deadline), "a known revision resumes with a delta")
		time.Sleep(50 * time.Millisecond) // the federator is still settling
	}
	require.GreaterOrEqual(t, resumed.GetRevision(), snap.GetRevision())

	unknown := first(snap.GetRevision() + 1_000_000)
	require.True(t, unknown.GetReset_(), "an unknown revision gets a snapshot")
}
