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
	"github.com/stretchr/testify/assert"
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

	first := func(since int64) (*causewayv1.WatchResponse, error) {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		stream, err := rpc.Watch(wctx, &causewayv1.WatchRequest{Cluster: "west", SinceRevision: since})
		if err != nil {
			return nil, err
		}
		return stream.Recv()
	}
	// While the federator starts it may rebuild the view of one revision
	// (its source's exports, its own bundle arrive): a watcher of the
	// older build then gets a snapshot. Once settled, resuming gets a delta.
	var snap, resumed *causewayv1.WatchResponse
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var err error
		snap, err = first(0)
		require.NoError(c, err)
		require.True(c, snap.GetReset_())
		require.NotEmpty(c, snap.GetUpserts())
		resumed, err = first(snap.GetRevision())
		require.NoError(c, err)
		assert.False(c, resumed.GetReset_())
	}, 10*time.Second, 50*time.Millisecond, "a known revision resumes with a delta")
	require.GreaterOrEqual(t, resumed.GetRevision(), snap.GetRevision())

	unknown, err := first(snap.GetRevision() + 1_000_000)
	require.NoError(t, err)
	require.True(t, unknown.GetReset_(), "an unknown revision gets a snapshot")
}
